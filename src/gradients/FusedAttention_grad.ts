// Gradients of FusedAttention, FusedAttentionRope and FusedAttentionNormRope: one FusedAttentionGrad kernel call gives
// dq, dk, dv (lse is not differentiable; the RoPE tables are constants, and so are the q/k norm weights: frozen base
// weights, whose gradient is not computed).
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap } from '@tensorflow/tfjs-core';
import { FusedAttention, FusedAttentionGrad, FusedAttentionNormRope, FusedAttentionRope } from '../kernel_names.ts';

export const fusedAttentionGradConfig: GradConfig = {
  kernelName: FusedAttention,
  inputsToSave: ['q', 'k', 'v', 'segmentIds'],
  outputsToSave: [true, true],
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const [q, k, v, segmentIds, out, lse] = saved;
    const dy = Array.isArray(dys) ? dys[0] : dys;
    const [dq, dk, dv] = tf
      .engine()
      .runKernel(FusedAttentionGrad, { dy, q, k, v, segmentIds, out, lse }, attrs) as tf.Tensor[];
    return { q: () => dq, k: () => dk, v: () => dv, segmentIds: () => tf.zerosLike(segmentIds) };
  },
};

export const fusedAttentionRopeGradConfig: GradConfig = {
  kernelName: FusedAttentionRope,
  inputsToSave: ['q', 'k', 'v', 'segmentIds', 'cos', 'sin'],
  outputsToSave: [true, true],
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const [q, k, v, segmentIds, cos, sin, out, lse] = saved;
    const dy = Array.isArray(dys) ? dys[0] : dys;
    const [dq, dk, dv] = tf
      .engine()
      .runKernel(FusedAttentionGrad, { dy, q, k, v, segmentIds, cos, sin, out, lse }, attrs) as tf.Tensor[];
    const none = (x: tf.Tensor) => () => tf.zerosLike(x);
    return { q: () => dq, k: () => dk, v: () => dv, segmentIds: none(segmentIds), cos: none(cos), sin: none(sin) };
  },
};

export const fusedAttentionNormRopeGradConfig: GradConfig = {
  kernelName: FusedAttentionNormRope,
  inputsToSave: ['q', 'k', 'v', 'segmentIds', 'cos', 'sin', 'qNorm', 'kNorm'],
  outputsToSave: [true, true],
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const [q, k, v, segmentIds, cos, sin, qNorm, kNorm, out, lse] = saved;
    const dy = Array.isArray(dys) ? dys[0] : dys;
    const [dq, dk, dv] = tf
      .engine()
      .runKernel(
        FusedAttentionGrad,
        { dy, q, k, v, segmentIds, cos, sin, qNorm, kNorm, out, lse },
        attrs,
      ) as tf.Tensor[];
    const none = (x: tf.Tensor) => () => tf.zerosLike(x);
    const frozen = () => {
      throw new Error('attention: the gradient of the q/k norm weights is not computed (they are frozen base weights)');
    };
    return {
      q: () => dq,
      k: () => dk,
      v: () => dv,
      segmentIds: none(segmentIds),
      cos: none(cos),
      sin: none(sin),
      qNorm: frozen,
      kNorm: frozen,
    };
  },
};
