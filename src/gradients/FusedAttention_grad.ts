// Gradients of FusedAttention and FusedAttentionRope: one FusedAttentionGrad kernel call gives dq, dk, dv (lse is
// not differentiable; the RoPE tables are constants).
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap } from '@tensorflow/tfjs-core';
import { FusedAttention, FusedAttentionGrad, FusedAttentionRope } from '../kernel_names.ts';

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
