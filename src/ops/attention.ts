// attention(q, k, v, segmentIds): causal (optionally sliding-window) self-attention inside packed segments, GQA,
// one fused kernel.
import * as tf from '@tensorflow/tfjs-core';
import { FusedAttention, FusedAttentionNormRope, FusedAttentionRope } from '../kernel_names.ts';

/**
 * softmax(q k^T * scale + mask) v where query t attends key s iff s <= t and segmentIds[b, s] == segmentIds[b, t];
 * head h uses kv head floor(h / (H / Hkv)) (HF repeat_kv). Differentiable wrt q, k, v.
 * q [B, T, H, D], k/v [B, T, Hkv, D] (the layout the projections produce; no transposes), segmentIds [B*T] or
 * [B, T] int32, non-decreasing within each row (a new packed document starts where it increases).
 * Returns [B, T, H, D] (reshape to [B*T, H*D] for o_proj). scale defaults to 1/sqrt(D). window > 0: query t
 * also needs t - s < window (HF sliding-window layers), applied inside each segment; 0 (default) = no window.
 * rope: cos/sin [B*T, D]: attend with rope(q), rope(k) (HF rotate-half, as ops.rope) computed inside the kernel;
 * the gradients are those of the unrotated q, k. norm (with rope): q and k are first RMS-normalized over each head's
 * D values with weights q, k [D] (Qwen3's q_norm, k_norm; row sums as ops.rmsNorm's vectorSums when bf16), inside
 * the kernel too; the gradients are those of the raw q, k.
 */
export function attention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  segmentIds: Int32Array | tf.Tensor,
  scale?: number,
  window = 0,
  bf16 = false,
  rope?: { cos: tf.Tensor2D; sin: tf.Tensor2D },
  norm?: { q: tf.Tensor; k: tf.Tensor; eps: number },
): tf.Tensor4D {
  const [B, T, H, D] = q.shape;
  const Hkv = k.shape[2];
  if (k.shape[0] !== B || k.shape[1] !== T || k.shape[3] !== D || v.shape.join() !== k.shape.join() || H % Hkv !== 0) {
    throw new Error(
      `attention: q [B,T,H,D], k/v [B,T,Hkv,D] with H % Hkv == 0 expected, got q ${q.shape}, k ${k.shape}, v ${v.shape}`,
    );
  }
  if (!Number.isInteger(window) || window < 0) throw new Error(`attention: window ${window} must be an integer >= 0`);
  if (rope && (rope.cos.shape.join() !== `${B * T},${D}` || rope.sin.shape.join() !== `${B * T},${D}` || D % 2 !== 0)) {
    throw new Error(
      `attention: rope cos/sin [B*T, D] = [${B * T}, ${D}] with even D expected, got ${rope.cos.shape}, ${rope.sin.shape}`,
    );
  }
  if (norm && (!rope || norm.q.shape.join() !== `${D}` || norm.k.shape.join() !== `${D}`)) {
    throw new Error(
      `attention: norm needs rope and weights [D] = [${D}], got q ${norm.q.shape}, k ${norm.k.shape}${rope ? '' : ' without rope'}`,
    );
  }
  const ids = segmentIds instanceof Int32Array ? segmentIds : (segmentIds.dataSync() as Int32Array);
  if (ids.length !== B * T) throw new Error(`attention: segmentIds has ${ids.length} values, expected B*T = ${B * T}`);
  for (let b = 0; b < B; b++) {
    for (let t = 1; t < T; t++) {
      if (ids[b * T + t] < ids[b * T + t - 1])
        throw new Error(`attention: segmentIds must not decrease within a row (row ${b}, t ${t})`);
    }
  }
  const seg =
    segmentIds instanceof Int32Array ? tf.tensor2d(segmentIds, [B, T], 'int32') : tf.reshape(segmentIds, [B, T]);
  const [out, lse] = tf.engine().runKernel(
    norm ? FusedAttentionNormRope : rope ? FusedAttentionRope : FusedAttention,
    {
      q,
      k,
      v,
      segmentIds: seg,
      ...(rope ? { cos: rope.cos, sin: rope.sin } : {}),
      ...(norm ? { qNorm: norm.q, kNorm: norm.k } : {}),
    },
    {
      scale: scale ?? 1 / Math.sqrt(D),
      ...(window > 0 ? { window } : {}),
      ...(bf16 ? { bf16 } : {}),
      ...(norm ? { normEps: norm.eps } : {}),
    },
  ) as tf.Tensor[];
  lse.dispose(); // the tape keeps its own copy for the backward pass
  if (seg !== segmentIds) seg.dispose();
  return out as tf.Tensor4D;
}
