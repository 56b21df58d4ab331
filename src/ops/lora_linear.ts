// loraLinear(x, W, A, B, scale): PEFT LoRA linear layer in one kernel pair (no separate matmul/mul/add ops).
import * as tf from '@tensorflow/tfjs-core';
import { LoraLinear } from '../kernel_names.ts';
import { logicalShape } from './matmul_bf16.ts';

/**
 * y = x W^T (+ bias) + scale * (xLora A^T) B^T, PEFT `lora.Linear` with xLora = dropout(x) (default x).
 * x [N, in], W [out, in] (float32 or packed bf16) and bias [out] (frozen), A [r, in], B [out, r] (trainable). Differentiable wrt x,
 * xLora, A, B. Returns [N, out].
 */
export function loraLinear(
  x: tf.Tensor2D,
  W: tf.Tensor2D,
  A: tf.Tensor2D,
  B: tf.Tensor2D,
  scale: number,
  opts: { bias?: tf.Tensor1D; xLora?: tf.Tensor2D } = {},
): tf.Tensor2D {
  const [, inp] = x.shape,
    [out, inW] = logicalShape(W),
    [r, inA] = A.shape;
  const xl = opts.xLora ?? x;
  if (
    inW !== inp ||
    inA !== inp ||
    B.shape[0] !== out ||
    B.shape[1] !== r ||
    xl.shape.join() !== x.shape.join() ||
    (opts.bias && opts.bias.shape[0] !== out)
  ) {
    throw new Error(
      `loraLinear: x [N,in], W [out,in], A [r,in], B [out,r], bias [out] expected, got x ${x.shape}, ` +
        `W ${W.shape}, A ${A.shape}, B ${B.shape}${opts.bias ? `, bias ${opts.bias.shape}` : ''}`,
    );
  }
  // Without dropout x is passed once (as xl): backward then returns one summed dx, not dx + dxl for the tape to add.
  const sharedX = xl === x;
  const inputs: Record<string, tf.Tensor> = sharedX ? { xl, W, A, B } : { x, xl, W, A, B };
  if (opts.bias) inputs.bias = opts.bias;
  const [y, u] = tf.engine().runKernel(LoraLinear, inputs, { scale, sharedX }) as tf.Tensor[];
  u.dispose(); // kept by the tape when a gradient is being recorded
  return y as tf.Tensor2D;
}
