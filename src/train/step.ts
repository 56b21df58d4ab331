// One optimizer step's gradient: token-weighted accumulation over all its micro-batches (torchtune style).
//   loss = sum_mb sum_t w_t CE_t / N,  N = trained tokens (w_t != 0) over ALL micro-batches of the step
// so gradient accumulation over k rows equals one pass over the k rows together, whatever their lengths;
// never a mean of per-micro-batch means (which would over-weight short rows).
// N counts tokens, not sum(w): root sample weights are loss multipliers (a dataset weighted 0.5 everywhere
// trains half as hard), and they may be negative, which would make sum(w) a meaningless normaliser.
import type * as tf from '@tensorflow/tfjs-core';
import type { PackedRow } from '../data/types.ts';
import type { Batch } from '../model/model.ts';

/** Unnormalised loss and gradients of one micro-batch: grads of sum_t w_t CE_t. */
export interface MicroResult {
  lossSum: number;
  grads: Map<string, tf.Tensor>;
}

/**
 * Packed rows -> one [B, T] batch, T = longest row. Padding has weight 0 and positions 0,1,2,... so it forms
 * its own attention segment (the model starts a segment wherever positions do not step by +1).
 */
export function rowsToBatch(rows: PackedRow[]): Batch {
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.inputIds.length));
  const inputIds = new Int32Array(B * T);
  const positionIds = new Int32Array(B * T);
  const weights = new Float32Array(B * T);
  rows.forEach((r, b) => {
    const n = r.inputIds.length;
    inputIds.set(r.inputIds, b * T);
    positionIds.set(r.positionIds, b * T);
    weights.set(r.weights, b * T);
    for (let t = n; t < T; t++) positionIds[b * T + t] = t - n;
  });
  return { B, T, inputIds, positionIds, weights };
}

/** Trained tokens of a batch (w != 0): the normaliser's share of this batch. */
export function trainedTokens(batch: Batch): number {
  let n = 0;
  for (const w of batch.weights) if (w !== 0) n++;
  return n;
}

export interface StepGradient {
  /** d(loss)/d(param), loss normalised by `tokens` over the whole step. */
  grads: Map<string, Float32Array>;
  /** sum w*CE over the step and the normaliser N; loss = lossSum / tokens. */
  lossSum: number;
  tokens: number;
}

/** Run `lossAndGrads` on each micro-batch, sum everything in float64, divide once by the step's N. */
export function accumulateStep(
  micro: Batch[],
  lossAndGrads: (batch: Batch, index: number) => MicroResult,
): StepGradient {
  const acc = new Map<string, { shape: number[]; sum: Float64Array }>();
  let lossSum = 0;
  let tokens = 0;
  micro.forEach((batch, i) => {
    tokens += trainedTokens(batch);
    const r = lossAndGrads(batch, i);
    lossSum += r.lossSum;
    for (const [name, g] of r.grads) {
      const data = g.dataSync();
      let a = acc.get(name);
      if (!a) acc.set(name, (a = { shape: g.shape, sum: new Float64Array(data.length) }));
      for (let j = 0; j < data.length; j++) a.sum[j] += data[j];
      g.dispose();
    }
  });
  const grads = new Map<string, Float32Array>();
  const inv = tokens > 0 ? 1 / tokens : 0;
  for (const [name, a] of acc)
    grads.set(
      name,
      Float32Array.from(a.sum, (x) => x * inv),
    );
  return { grads, lossSum, tokens };
}
