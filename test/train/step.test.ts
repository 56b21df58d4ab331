import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { accumulateStep, rowsToBatch } from '../../src/train/step.ts';
import { gradNorm } from '../../src/train/optimizer.ts';
import type { Batch } from '../../src/model/model.ts';
import { makePlan, type Batcher } from '../../src/train/plan.ts';
import type { PackedRow, TokenizedExample } from '../../src/data/types.ts';

function row(ids: number[], w: number[]): PackedRow {
  return {
    inputIds: Int32Array.from(ids),
    weights: Float32Array.from(w),
    positionIds: Int32Array.from(ids.map((_, i) => i)),
    segmentIds: new Int32Array(ids.length),
    examples: [0],
  };
}
// Fake loss: sum_t w_t (p - id_t)^2 for a scalar parameter p, gradient sum_t 2 w_t (p - id_t).
const p = 0.5;
const fake = (b: Batch) => {
  let l = 0,
    g = 0;
  b.weights.forEach((w, t) => {
    l += w * (p - b.inputIds[t]) ** 2;
    g += 2 * w * (p - b.inputIds[t]);
  });
  return { lossSum: l, grads: new Map([['p', tf.tensor1d([g])]]) };
};

describe('token-weighted accumulation', () => {
  const r1 = row([1, 2, 3, 4, 5, 6], [0, 1, 1, 1, 1, 1]);
  const r2 = row([9, 9], [0, 1]);
  it('two micro-batches equal one batch of both rows', () => {
    const acc = accumulateStep([rowsToBatch([r1]), rowsToBatch([r2])], fake);
    const one = accumulateStep([rowsToBatch([r1, r2])], fake);
    expect(acc.tokens).toBe(6);
    expect(acc.lossSum).toBeCloseTo(one.lossSum, 10);
    expect(acc.grads.get('p')![0]).toBeCloseTo(one.grads.get('p')![0], 6);
    // and it is not the mean of per-micro-batch means
    const m1 = fake(rowsToBatch([r1])),
      m2 = fake(rowsToBatch([r2]));
    const meanOfMeans = (m1.grads.get('p')!.dataSync()[0] / 5 + m2.grads.get('p')!.dataSync()[0] / 1) / 2;
    expect(Math.abs(acc.grads.get('p')![0] - meanOfMeans)).toBeGreaterThan(1);
  });
  it('divides the float64 sum by N once, rounding to float32 once (one micro-batch: the same bits; -0 is +0)', () => {
    const vals = [
      [-0, 1e-30, 3.3333333, -7.1e5, 0.1],
      [0, 2e-30, -1.0000001, 7.1e5, 0.2],
    ].map((v) => Float32Array.from(v));
    const fixed = (k: number) => () => ({
      lossSum: 0,
      grads: new Map([
        ['p', tf.tensor1d(vals[k])],
        ['q', tf.tensor1d(vals[1 - k].map((x) => x * 3))],
      ]),
    });
    const one = accumulateStep([rowsToBatch([r1])], fixed(0)); // 5 trained tokens
    expect([...one.grads.get('p')!]).toEqual([...vals[0]].map((g) => Math.fround((0 + g) * (1 / 5))));
    expect(Object.is(one.grads.get('p')![0], 0)).toBe(true);
    const two = accumulateStep([rowsToBatch([r1]), rowsToBatch([r2])], (_, i) => fixed(i)());
    expect([...two.grads.get('p')!]).toEqual([...vals[0]].map((g, j) => Math.fround((0 + g + vals[1][j]) * (1 / 6))));
    // Its sum of squares is gradNorm's, bit for bit (the loop clips with it instead of another pass).
    for (const r of [one, two]) expect(Math.sqrt(r.sumSquares)).toBe(gradNorm(r.grads));
  });
  it('pads shorter rows with weight 0 and a fresh position run', () => {
    const b = rowsToBatch([r1, r2]);
    expect(b.T).toBe(6);
    expect([...b.positionIds.slice(6)]).toEqual([0, 1, 0, 1, 2, 3]);
    expect([...b.weights.slice(6)]).toEqual([0, 1, 0, 0, 0, 0]);
  });
});

describe('step plan', () => {
  const ex: TokenizedExample[] = Array.from({ length: 10 }, (_, i) => ({
    line: i + 1,
    inputIds: [i, i],
    weights: [0, 1],
  }));
  // One example per row, rows in the given order.
  const oneEach: Batcher = (xs) => xs.map((x, i) => ({ ...row(x.inputIds, x.weights), examples: [i] }));
  const cfg = { epochs: 2.5, gradientAccumulationSteps: 3, batchSize: 8, batchSizeSamples: 0, maxSteps: 0, seed: 1 };
  it('counts steps per epoch, partial last epoch and seeded order', () => {
    const plan = makePlan(ex, oneEach, cfg);
    expect(plan.epochSteps).toEqual([4, 4, 2]);
    expect(plan.totalSteps).toBe(10);
    expect(plan.stepRows(3)).toHaveLength(1); // 10 rows in steps of 3: 3,3,3,1
    const e0 = plan.rows(0).map((r) => r.examples[0]);
    const e1 = plan.rows(1).map((r) => r.examples[0]);
    expect([...e0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(e0).not.toEqual(e1);
    expect(
      makePlan(ex, oneEach, cfg)
        .rows(1)
        .map((r) => r.examples[0]),
    ).toEqual(e1);
    expect(plan.epochOf(4)).toBe(1);
    expect(plan.epochProgress(6)).toBeCloseTo(1.5);
    expect(makePlan(ex, oneEach, { ...cfg, maxSteps: 3 }).totalSteps).toBe(3);
  });
});
