// Token-weighted cross-entropy through the lm_head, in row chunks so [T, V] float32 logits never exist whole: the
// tfjs-op form of the WeightedCrossEntropy kernel, for what the kernel lacks: logit soft-capping (Gemma 3, every
// backend) and the 'tensorflow' backend (no lorasft kernels).
// Forward: per chunk logits = h W^T (tf matmul), then one fused pass per row in plain TS:
//   loss += w * (logsumexp(logits) - logits[label]).
// Backward (custom gradient, recomputes each chunk's logits): dh = ((softmax(logits) - onehot(label)) * w * dy) @ W.
// The per-row passes run on the logits' Float32Array: tfjs-cpu's softmax/logSumExp over [c, V] cost ~40x more.
import * as tf from '@tensorflow/tfjs-core';
import { matMulW, matMulWT } from './precision.ts';

/**
 * Rows per chunk: about 16M logits (64 MB) at a time, between 16 and 512 rows. A quarter of the kernel's chunk
 * (ceChunkRows), which is one [c, V] buffer reused in place: here a chunk's logits and gradient are new arrays.
 */
export function lossChunkRows(V: number): number {
  return Math.max(16, Math.min(512, Math.floor((1 << 24) / V)));
}

/** Per row r of logits [c, V]: lse[r] = log sum exp(logits[r]). */
function rowLogSumExp(logits: Float32Array, c: number, V: number): Float64Array {
  const lse = new Float64Array(c);
  for (let r = 0; r < c; r++) {
    const o = r * V;
    let mx = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v] > mx) mx = logits[o + v];
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[o + v] - mx);
    lse[r] = mx + Math.log(s);
  }
  return lse;
}

/** dlogits[r] = (softmax(logits[r]) - onehot(label[r])) * scale[r], written into a new [c, V] array. */
function ceLogitsGrad(
  logits: Float32Array,
  lse: Float64Array,
  labels: Int32Array,
  scale: Float64Array,
  V: number,
): Float32Array {
  const c = lse.length;
  const d = new Float32Array(c * V);
  for (let r = 0; r < c; r++) {
    const o = r * V;
    const l = lse[r];
    const s = scale[r];
    for (let v = 0; v < V; v++) d[o + v] = Math.exp(logits[o + v] - l) * s;
    d[o + labels[r]] -= s;
  }
  return d;
}

/** x = cap * tanh(x / cap) elementwise, each step rounded to float32 (HF: logits / cap, tanh, * cap). */
function softcapInPlace(x: Float32Array, cap: number): void {
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(Math.fround(Math.tanh(Math.fround(x[i] / cap))) * cap);
}

/**
 * sum_m w[m] * CE(h[m] W^T, labels[m]). h [M, C] (differentiable, M >= 1), W [V, C] (constant lm_head, float32
 * or packed bf16),
 * labels/w [M]. Returns a scalar whose gradient flows to h only.
 * eagerGrad: compute dLoss/dh [M, C] during the forward pass while each chunk's logits are at hand (2 lm_head
 * matmuls per step instead of 3); use it when a backward pass will follow.
 * softcap: logits = cap * tanh(logits / cap) before the CE (Gemma final_logit_softcapping), in float32 as HF.
 */
export function chunkedWeightedCE(
  h: tf.Tensor2D,
  W: tf.Tensor2D,
  labels: Int32Array,
  w: Float32Array,
  opts: { rowsPerChunk?: number; eagerGrad?: boolean; softcap?: number | null } = {},
): tf.Scalar {
  const rowsPerChunk = opts.rowsPerChunk;
  const [M] = h.shape;
  const V = W.shape[0];
  const step = rowsPerChunk ?? lossChunkRows(V);
  const chunks: Array<[number, number]> = [];
  for (let s = 0; s < M; s += step) chunks.push([s, Math.min(M, s + step)]);
  /** logits [c, V] of rows s..e as a Float32Array (the tensor is disposed). */
  const chunkLogits = (hh: tf.Tensor2D, s: number, e: number): Float32Array => {
    const t = tf.tidy(() => matMulWT(tf.slice(hh, [s, 0], [e - s, -1]), W));
    const data = t.dataSync() as Float32Array;
    t.dispose();
    if (opts.softcap) softcapInPlace(data, opts.softcap);
    return data;
  };
  /** d [c, V] = dL/d(capped logits) -> dL/d(logits): times 1 - tanh^2 = 1 - (capped / cap)^2. */
  const uncap = (d: Float32Array, capped: Float32Array): Float32Array => {
    const cap = opts.softcap;
    if (cap) for (let i = 0; i < d.length; i++) d[i] *= 1 - (capped[i] / cap) ** 2;
    return d;
  };
  const lse: Float64Array[] = [];

  const ce = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const hh = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    let total = 0;
    const eager: tf.Tensor[] = [];
    for (const [s, e] of chunks) {
      const logits = chunkLogits(hh, s, e);
      const l = rowLogSumExp(logits, e - s, V);
      lse.push(l);
      for (let r = 0; r < e - s; r++) total += w[s + r] * (l[r] - logits[r * V + labels[s + r]]);
      if (opts.eagerGrad) {
        const d = uncap(ceLogitsGrad(logits, l, labels.subarray(s, e), Float64Array.from(w.subarray(s, e)), V), logits);
        eager.push(tf.tidy(() => matMulW(tf.tensor2d(d, [e - s, V]), W))); // [c, C]
      }
    }
    if (opts.eagerGrad) {
      const dh = eager.length === 1 ? eager[0] : tf.concat(eager, 0);
      if (eager.length > 1) for (const p of eager) p.dispose();
      save([dh]); // dLoss/dh for dy = 1; the backward pass only rescales it
      return { value: tf.scalar(total), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(saved[0], dy) };
    }
    save([hh]); // the forward scope is disposed before backprop; saved tensors survive it
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const hs = saved[0] as tf.Tensor2D;
      const g = dy.dataSync()[0];
      const parts = chunks.map(([s, e], k) => {
        const logits = chunkLogits(hs, s, e);
        const scale = Float64Array.from(w.subarray(s, e), (x) => x * g);
        const d = uncap(ceLogitsGrad(logits, lse[k], labels.subarray(s, e), scale, V), logits);
        return tf.tidy(() => matMulW(tf.tensor2d(d, [e - s, V]), W)); // [c, C]
      });
      if (parts.length === 1) return parts[0];
      const dh = tf.concat(parts, 0);
      for (const p of parts) p.dispose();
      return dh;
    };
    return { value: tf.scalar(total), gradFunc };
  });
  return ce(h) as tf.Scalar;
}
