// The step plan: which packed rows each optimizer step trains on. Epoch e packs the training examples in a
// seeded order (seed, e); its rows are cut into steps of gradientAccumulationSteps rows (the last step of an
// epoch may have fewer). Fractional epochs stop after ceil(frac * steps of that epoch) steps of the last one.
// Everything is a pure function of (examples, config), so a resumed run sees the same plan.
import type { PackedRow, TokenizedExample } from '../data/types.ts';
import { deriveSeed, permutation, STREAM } from '../util/random.ts';

export type Batcher = (
  examples: TokenizedExample[],
  opts: { batchSize: number; batchSizeSamples?: number; seed: number },
) => PackedRow[];

export interface PlanConfig {
  epochs: number;
  gradientAccumulationSteps: number;
  batchSize: number;
  batchSizeSamples: number;
  maxSteps: number;
  seed: number;
}

export interface StepPlan {
  totalSteps: number;
  /** epochStart[e] = index of the first step of epoch e; epochStart[numEpochs] = steps of the full plan. */
  epochStart: number[];
  /** Steps of each (possibly partial) epoch. */
  epochSteps: number[];
  /** Rows of epoch e (recomputed on demand: packing is cheap and deterministic). */
  rows(e: number): PackedRow[];
  epochOf(step: number): number;
  /** Rows of step `step` (0-based). */
  stepRows(step: number): PackedRow[];
  /** Fractional epoch progress after `stepsDone` steps (e.g. 1.5 = half-way through the second epoch). */
  epochProgress(stepsDone: number): number;
}

/** Packed rows of epoch e: examples in a seeded order, then packed. */
function epochRows(examples: TokenizedExample[], batcher: Batcher, cfg: PlanConfig, e: number): PackedRow[] {
  const seed = deriveSeed(cfg.seed, STREAM.shuffle, e);
  const order = permutation(examples.length, seed);
  const rows = batcher(
    order.map((i) => examples[i]),
    { batchSize: cfg.batchSize, batchSizeSamples: cfg.batchSizeSamples || undefined, seed },
  );
  // Report example indices in terms of the caller's list.
  return rows.map((r) => ({ ...r, examples: r.examples.map((i) => order[i]) }));
}

export function makePlan(examples: TokenizedExample[], batcher: Batcher, cfg: PlanConfig): StepPlan {
  const GA = cfg.gradientAccumulationSteps;
  const numEpochs = Math.ceil(cfg.epochs);
  const epochStart = [0];
  const epochSteps: number[] = [];
  const rowCounts: number[] = [];
  let cache: { e: number; rows: PackedRow[] } | null = null;
  const rows = (e: number) => {
    if (cache?.e !== e) cache = { e, rows: epochRows(examples, batcher, cfg, e) };
    return cache.rows;
  };
  for (let e = 0; e < numEpochs; e++) {
    const n = rows(e).length;
    rowCounts.push(n);
    const full = Math.ceil(n / GA);
    const frac = cfg.epochs - e;
    const steps = frac >= 1 ? full : Math.max(1, Math.ceil(frac * full));
    epochSteps.push(steps);
    epochStart.push(epochStart[e] + steps);
  }
  const planned = epochStart[numEpochs];
  const totalSteps = cfg.maxSteps > 0 ? Math.min(cfg.maxSteps, planned) : planned;
  const epochOf = (step: number) => {
    let e = 0;
    while (e + 1 < numEpochs && step >= epochStart[e + 1]) e++;
    return e;
  };
  return {
    totalSteps,
    epochStart,
    epochSteps,
    rows,
    epochOf,
    stepRows(step) {
      const e = epochOf(step);
      const k = step - epochStart[e];
      return rows(e).slice(k * GA, (k + 1) * GA);
    },
    epochProgress(done) {
      if (done <= 0) return 0;
      const e = epochOf(done - 1);
      const fullSteps = Math.ceil(rowCounts[e] / GA);
      return e + (done - epochStart[e]) / fullSteps;
    },
  };
}
