// crossEntropyWeighted(h, W, labels, weights): token-weighted CE through the lm_head without [M, V] logits.
import * as tf from '@tensorflow/tfjs-core';
import { WeightedCrossEntropy } from '../kernel_names.ts';
import { logicalShape } from './matmul_bf16.ts';

/** Rows per chunk: up to 64M logits (256 MB) at a time, between 8 and 512 rows. Fewer chunks = fewer passes
 *  over W [V, C]: at Qwen3-0.6B's V = 151936, M = 511 (`npm run bench -- ce`), 110 rows took 2.0 s, 512 1.64 s. */
export function ceChunkRows(V: number): number {
  return Math.max(8, Math.min(512, Math.floor((1 << 26) / V)));
}

/**
 * sum_m weights[m] * (logsumexp(h[m] W^T) - (h[m] W^T)[labels[m]]) as a scalar (unnormalised; divide by the
 * weight sum yourself). h [M, C] (differentiable), W [V, C] (lm_head, frozen: no gradient), labels int32 [M]
 * in [0, V), weights float32 [M] (0 = row ignored). The gradient wrt h is computed in the same pass, unless
 * withGrad is false (an evaluation: the loss has no gradient then).
 */
export function crossEntropyWeighted(
  h: tf.Tensor2D,
  W: tf.Tensor2D,
  labels: Int32Array | tf.Tensor1D,
  weights: Float32Array | tf.Tensor1D,
  opts: { chunkRows?: number; withGrad?: boolean } = {},
): tf.Scalar {
  const [M, C] = h.shape;
  const [V, Cw] = logicalShape(W); // W float32 or packed bf16
  if (C !== Cw) throw new Error(`crossEntropyWeighted: h [M, ${C}] and W [V, ${Cw}] disagree on C`);
  const lab = labels instanceof Int32Array ? labels : (labels.dataSync() as Int32Array);
  if (lab.length !== M) throw new Error(`crossEntropyWeighted: ${lab.length} labels for ${M} rows`);
  for (let m = 0; m < M; m++) {
    if (!(lab[m] >= 0 && lab[m] < V))
      throw new Error(`crossEntropyWeighted: label ${lab[m]} at row ${m} is outside [0, ${V})`);
  }
  const lt = labels instanceof Int32Array ? tf.tensor1d(labels, 'int32') : labels;
  const wt = weights instanceof Float32Array ? tf.tensor1d(weights, 'float32') : weights;
  if (wt.shape[0] !== M) throw new Error(`crossEntropyWeighted: ${wt.shape[0]} weights for ${M} rows`);
  const [loss, dh] = tf
    .engine()
    .runKernel(
      WeightedCrossEntropy,
      { h, W, labels: lt, weights: wt },
      { chunkRows: opts.chunkRows ?? ceChunkRows(V), withGrad: opts.withGrad ?? true },
    ) as tf.Tensor[];
  dh.dispose(); // kept by the tape when a gradient is being recorded
  if (lt !== labels) lt.dispose();
  if (wt !== weights) wt.dispose();
  return loss as tf.Scalar;
}
