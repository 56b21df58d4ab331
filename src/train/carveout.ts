// Eval carve-out, as the managed job does when no evaluation dataset is given: hold out min(10%, 100)
// examples, chosen with a seeded permutation so the split is the same on every run and on resume.
import { deriveSeed, permutation, STREAM } from '../util/random.ts';

const CARVEOUT_FRACTION = 0.1;
const CARVEOUT_MAX = 100;
/** The managed job's minimum dataset size; the training side keeps at least this many. */
const MIN_TRAIN_EXAMPLES = 3;

export interface Split<T> {
  train: T[];
  eval: T[];
  /** Why no carve-out was made (dataset too small), else null. */
  skipped: string | null;
}

export function carveOut<T>(examples: T[], seed: number): Split<T> {
  const n = examples.length;
  const k = Math.min(Math.floor(n * CARVEOUT_FRACTION), CARVEOUT_MAX);
  if (k < 1 || n - k < MIN_TRAIN_EXAMPLES) {
    return {
      train: examples,
      eval: [],
      skipped: `${n} examples are too few to hold out 10% for evaluation (need at least 10); training without eval`,
    };
  }
  const perm = permutation(n, deriveSeed(seed, STREAM.carveout));
  const held = new Set(perm.slice(0, k));
  // Both sides keep the dataset's order (data order per epoch is shuffled later).
  return {
    train: examples.filter((_, i) => !held.has(i)),
    eval: examples.filter((_, i) => held.has(i)),
    skipped: null,
  };
}
