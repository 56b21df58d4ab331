// The ops of a decoder layer, two ways. FUSED_OPS: lorasft's fused ops (src/ops), whose kernels exist on 'native'
// (C++) and 'cpu' (TypeScript references). PLAIN_OPS: the same math composed of tfjs ops, for the 'tensorflow'
// backend (tfjs-node), which has none of lorasft's kernels (they read MathBackendCPU's tensor storage). Tests run
// PLAIN_OPS on 'cpu' (LossOpts.fused false) against float64 references, as that backend's stand-in.
import * as tf from '@tensorflow/tfjs-core';
import * as ops from '../ops/index.ts';
import { matMulWT } from './precision.ts';

export interface LayerOps {
  /** RMSNorm over the last axis: x * rsqrt(mean(x^2) + eps) * w. */
  /** vectorSums: row sums in vector lanes where the backend has them, for bf16 models. */
  rmsNorm<T extends tf.Tensor>(x: T, w: tf.Tensor, eps: number, opts?: { vectorSums?: boolean }): T;
  /** y = x W^T (+ bias) + scale * (xLora A^T) B^T; x [N, in] -> [N, out] (xLora: x after LoRA dropout). */
  loraLinear(
    x: tf.Tensor2D,
    W: tf.Tensor2D,
    A: tf.Tensor2D,
    B: tf.Tensor2D,
    scale: number,
    opts: { bias?: tf.Tensor1D; xLora?: tf.Tensor2D },
  ): tf.Tensor2D;
  /** HF rotate-half RoPE: x [N, h, D], cos/sin [N, D]. */
  rope(x: tf.Tensor3D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor3D;
  /** silu(gate) * up (fastExp: a vector exp where the backend has one, for bf16 models). */
  swiglu(gate: tf.Tensor2D, up: tf.Tensor2D, opts?: { fastExp?: boolean }): tf.Tensor2D;
  /** gelu_tanh(gate) * up (Gemma's MLP). */
  geluTanhMul(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D;
}

export const FUSED_OPS: LayerOps = {
  rmsNorm: ops.rmsNorm,
  loraLinear: ops.loraLinear,
  rope: ops.rope,
  swiglu: ops.swiglu,
  geluTanhMul: ops.geluTanhMul,
};

const GELU_C = Math.sqrt(2 / Math.PI);

export const PLAIN_OPS: LayerOps = {
  rmsNorm: <T extends tf.Tensor>(x: T, w: tf.Tensor, eps: number) =>
    tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w) as T,

  loraLinear: (x, W, A, B, scale, { bias, xLora }) => {
    let y = matMulWT(x, W);
    if (bias) y = tf.add(y, bias);
    const ax = tf.mul(tf.matMul(xLora ?? x, A, false, true), scale); // [N, r]
    return tf.add(y, tf.matMul(ax, B, false, true));
  },

  rope: (x, cos, sin) =>
    tf.tidy(() => {
      const D = x.shape[2];
      const [x1, x2] = tf.split(x, [D / 2, D / 2], 2);
      const rot = tf.concat([tf.neg(x2), x1], 2); // rotate_half(x)
      return tf.add(tf.mul(x, tf.expandDims(cos, 1)), tf.mul(rot, tf.expandDims(sin, 1)));
    }),

  swiglu: (gate, up) => tf.mul(tf.mul(gate, tf.sigmoid(gate)), up),

  // gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
  geluTanhMul: (gate, up) =>
    tf.tidy(() => {
      const inner = tf.mul(tf.add(gate, tf.mul(tf.pow(gate, 3), 0.044715)), GELU_C);
      return tf.mul(tf.mul(tf.mul(gate, 0.5), tf.add(tf.tanh(inner), 1)), up);
    }),
};
