// Gradients of FusedAttention, FusedAttentionRope and FusedAttentionNormRope: one FusedAttentionGrad kernel call gives
// dq, dk, dv (lse is not differentiable; the RoPE tables are constants, and so are the q/k norm weights: frozen base
// weights, whose gradient is not computed).
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap } from '@tensorflow/tfjs-core';
import { FusedAttention, FusedAttentionGrad, FusedAttentionNormRope, FusedAttentionRope } from '../kernel_names.ts';

/** The gradient of one attention kernel with inputs q, k, v, segmentIds, then `constants` (a zero gradient) and
 *  `frozen` (asking for their gradient throws); all saved with the outputs out, lse for FusedAttentionGrad. */
function attentionGradConfig(kernelName: string, constants: string[], frozen: string[] = []): GradConfig {
  const names = ['q', 'k', 'v', 'segmentIds', ...constants, ...frozen];
  return {
    kernelName,
    inputsToSave: names,
    outputsToSave: [true, true],
    gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
      const inputs = Object.fromEntries(names.map((n, i) => [n, saved[i]]));
      const [out, lse] = saved.slice(names.length);
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [dq, dk, dv] = tf.engine().runKernel(FusedAttentionGrad, { dy, ...inputs, out, lse }, attrs) as tf.Tensor[];
      const grads: Record<string, () => tf.Tensor> = { q: () => dq, k: () => dk, v: () => dv };
      for (const n of ['segmentIds', ...constants]) grads[n] = () => tf.zerosLike(inputs[n]);
      for (const n of frozen)
        grads[n] = () => {
          throw new Error(
            'attention: the gradient of the q/k norm weights is not computed (they are frozen base weights)',
          );
        };
      return grads;
    },
  };
}

export const fusedAttentionGradConfig = attentionGradConfig(FusedAttention, []);
export const fusedAttentionRopeGradConfig = attentionGradConfig(FusedAttentionRope, ['cos', 'sin']);
export const fusedAttentionNormRopeGradConfig = attentionGradConfig(
  FusedAttentionNormRope,
  ['cos', 'sin'],
  ['qNorm', 'kNorm'],
);
