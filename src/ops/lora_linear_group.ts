// loraLinearGroup(x, members, scale): LoRA linears that read the same input (q/k/v, gate/up) in one kernel pair.
import * as tf from '@tensorflow/tfjs-core';
import { LoraLinearGroup } from '../kernel_names.ts';
import { logicalShape } from './matmul_bf16.ts';

export interface LoraMember {
  W: tf.Tensor2D;
  A: tf.Tensor2D;
  B: tf.Tensor2D;
  bias?: tf.Tensor1D;
}

/**
 * [y_i = x W_i^T (+ bias_i) + scale * (x A_i^T) B_i^T for each member], as loraLinear per member without dropout,
 * with x read (and rounded to bf16) once and one summed gradient of x. x [N, in]; W_i [out_i, in] (float32 or packed
 * bf16), A_i [r, in], B_i [out_i, r]: one rank for all. Differentiable wrt x, A_i, B_i.
 */
export function loraLinearGroup(x: tf.Tensor2D, members: LoraMember[], scale: number): tf.Tensor2D[] {
  const [, inp] = x.shape;
  const r = members[0]?.A.shape[0];
  const inputs: tf.Tensor[] = [x];
  members.forEach(({ W, A, B, bias }, i) => {
    const [out, inW] = logicalShape(W);
    if (inW !== inp || A.shape[0] !== r || A.shape[1] !== inp || B.shape[0] !== out || B.shape[1] !== r)
      throw new Error(
        `loraLinearGroup: member ${i}: x [N,in], W [out,in], A [r,in], B [out,r] with one r expected, got ` +
          `x ${x.shape}, W ${W.shape}, A ${A.shape}, B ${B.shape}`,
      );
    if (bias && bias.shape[0] !== out) throw new Error(`loraLinearGroup: member ${i}: bias [${out}] expected`);
    inputs.push(W, A, B);
  });
  if (!members.length) throw new Error('loraLinearGroup: no members');
  const biased = members.flatMap(({ bias }, i) => (bias ? [i] : []));
  inputs.push(...biased.map((i) => members[i].bias!));
  const attrs = { scale, members: members.length, biased };
  const [U, ...ys] = tf
    .engine()
    .runKernel(
      LoraLinearGroup,
      inputs as unknown as tf.NamedTensorMap,
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
  U.dispose(); // kept by the tape when a gradient is being recorded
  return ys as tf.Tensor2D[];
}
