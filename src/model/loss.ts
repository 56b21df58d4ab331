// Token-weighted cross-entropy through the lm_head, in row chunks so [T, V] float32 logits never exist whole.
// Forward: per chunk logits = h W^T, loss += sum w * (logsumexp(logits) - logits[label]).
// Backward (custom gradient, recomputes each chunk): dh = (softmax(logits) - onehot(label)) * w * dy @ W.
import * as tf from '@tensorflow/tfjs-core';

/** Rows per chunk: about 16M logits (64 MB) at a time, between 16 and 512 rows. */
export function lossChunkRows(V: number): number {
  return Math.max(16, Math.min(512, Math.floor((1 << 24) / V)));
}

/**
 * sum_m w[m] * CE(h[m] W^T, labels[m]). h [M, C] (differentiable, M >= 1), W [V, C] (constant lm_head),
 * labels/w [M]. Returns a scalar whose gradient flows to h only.
 */
export function chunkedWeightedCE(h: tf.Tensor2D, W: tf.Tensor2D, labels: Int32Array, w: Float32Array, rowsPerChunk?: number): tf.Scalar {
  const [M] = h.shape;
  const V = W.shape[0];
  const step = rowsPerChunk ?? lossChunkRows(V);
  const chunks: Array<[number, number]> = [];
  for (let s = 0; s < M; s += step) chunks.push([s, Math.min(M, s + step)]);
  const chunkLogits = (hh: tf.Tensor2D, s: number, e: number) => tf.matMul(tf.slice(hh, [s, 0], [e - s, -1]), W, false, true); // [c, V]
  const chunkOneHot = (s: number, e: number) => tf.oneHot(tf.tensor1d(labels.subarray(s, e), 'int32'), V, 1, 0, 'float32');

  const ce = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const hh = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    save([hh]); // the forward scope is disposed before backprop; saved tensors survive it
    // One tidy per chunk: only that chunk's [c, V] logits are alive at any time.
    let value: tf.Scalar = tf.scalar(0);
    for (const [s, e] of chunks) {
      const next = tf.tidy(() => {
        const logits = chunkLogits(hh, s, e);
        const nll = tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, chunkOneHot(s, e)), 1)); // [c]
        return tf.add(value, tf.sum(tf.mul(nll, tf.tensor1d(w.subarray(s, e))))) as tf.Scalar;
      });
      value.dispose();
      value = next;
    }
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const hs = saved[0] as tf.Tensor2D;
      const parts = chunks.map(([s, e]) =>
        tf.tidy(() => {
          const dlogits = tf.sub(tf.softmax(chunkLogits(hs, s, e)), chunkOneHot(s, e));
          const scale = tf.mul(tf.reshape(tf.tensor1d(w.subarray(s, e)), [e - s, 1]), dy); // [c, 1]
          return tf.matMul(tf.mul(dlogits, scale), W); // [c, C]
        }),
      );
      if (parts.length === 1) return parts[0];
      const dh = tf.concat(parts, 0);
      for (const p of parts) p.dispose();
      return dh;
    };
    return { value, gradFunc };
  });
  return ce(h) as tf.Scalar;
}
