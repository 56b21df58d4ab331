// rmsNorm(x, weight, eps): RMSNorm over the last axis (HF LlamaRMSNorm / Qwen3 q_norm, k_norm), one kernel.
import * as tf from '@tensorflow/tfjs-core';
import { RmsNorm } from '../kernel_names.ts';

/**
 * x * rsqrt(mean(x^2, -1) + eps) * weight; x [..., C], weight [C]. Differentiable wrt x and weight.
 * vectorSums: see RmsNormAttrs.
 */
export function rmsNorm<T extends tf.Tensor>(
  x: T,
  weight: tf.Tensor,
  eps: number,
  opts: { vectorSums?: boolean } = {},
): T {
  const C = x.shape[x.shape.length - 1];
  if (weight.shape.length !== 1 || weight.shape[0] !== C)
    throw new Error(`rmsNorm: weight [${C}] expected, got [${weight.shape}]`);
  const [y, rstd] = tf
    .engine()
    .runKernel(RmsNorm, { x, weight }, opts.vectorSums ? { eps, vectorSums: true } : { eps }) as tf.Tensor[];
  rstd.dispose(); // kept by the tape when a gradient is being recorded
  return y as T;
}
