// Causal self-attention with GQA, block-diagonal across packed documents (HF eager_attention_forward math), in
// tfjs ops: decoding steps over a KV cache (the FusedAttention kernel takes none), and the 'tensorflow' backend.
import * as tf from '@tensorflow/tfjs-core';

/** Added to masked scores; exp() of it underflows to exactly 0 after the row max is subtracted. */
const MASKED = -1e30;

/** Segment ids per row: a new document starts wherever positions do not step by +1. pos [B*T] -> seg [B*T]. */
export function segmentsFromPositions(pos: Int32Array, B: number, T: number): Int32Array {
  const seg = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 1; t < T; t++) {
      const i = b * T + t;
      seg[i] = seg[i - 1] + (pos[i] === pos[i - 1] + 1 ? 0 : 1);
    }
  }
  return seg;
}

/**
 * Additive mask [B, 1, 1, T, P+T] for T new queries over P cached + T new keys: query i sees every cached key
 * and new key j <= i of its own segment. The two 1s broadcast over (Hkv, G). window > 0 (sliding-window layers):
 * also only keys less than `window` positions back (cached key c is P+i-c back from new query i).
 */
export function attentionMask(seg: Int32Array, B: number, T: number, P = 0, window = 0): tf.Tensor {
  const S = P + T;
  const m = new Float32Array(B * T * S);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      const row = (b * T + i) * S;
      for (let j = 0; j < T; j++) {
        if (j > i || seg[b * T + j] !== seg[b * T + i] || (window > 0 && i - j >= window)) m[row + P + j] = MASKED;
      }
      if (window > 0) for (let c = 0; c < P; c++) if (P + i - c >= window) m[row + c] = MASKED;
    }
  }
  return tf.tensor(m, [B, 1, 1, T, S]);
}

/**
 * softmax(q k^T / sqrt(D) + mask) v with H = Hkv*G query heads sharing Hkv key/value heads (head h uses kv h/G,
 * as HF repeat_kv), computed per kv head without materialising the repeated keys.
 * q [B, T, H, D], k/v [B, Hkv, S, D] (S = cached + new keys), mask [B, 1, 1, T, S] -> [B*T, H*D].
 * scale defaults to 1/sqrt(D) (Gemma: query_pre_attn_scalar^-0.5).
 */
export function attention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  mask: tf.Tensor,
  scale?: number,
): tf.Tensor2D {
  const [B, T, H, D] = q.shape;
  const [, Hkv, S] = k.shape;
  const G = H / Hkv;
  const qg = tf.reshape(tf.transpose(tf.reshape(q, [B, T, Hkv, G, D]), [0, 2, 3, 1, 4]), [B, Hkv, G * T, D]);
  const scores = tf.mul(tf.matMul(qg, k, false, true), scale ?? 1 / Math.sqrt(D)); // [B, Hkv, G*T, S]
  const probs = tf.softmax(tf.add(tf.reshape(scores, [B, Hkv, G, T, S]), mask));
  const out = tf.matMul(tf.reshape(probs, [B, Hkv, G * T, S]), v); // [B, Hkv, G*T, D]
  return tf.reshape(tf.transpose(tf.reshape(out, [B, Hkv, G, T, D]), [0, 3, 1, 2, 4]), [B * T, H * D]);
}
