import { describe, expect, it } from 'vitest';
import { carveOut } from '../../src/train/carveout.ts';
import { deriveSeed, permutation, STREAM } from '../../src/util/random.ts';

describe('eval carve-out', () => {
  const xs = (n: number) => Array.from({ length: n }, (_, i) => i);
  it('holds out 10% up to 100 examples, seeded and disjoint', () => {
    const a = carveOut(xs(50), 1);
    expect(a.eval).toHaveLength(5);
    expect(a.train).toHaveLength(45);
    expect(new Set([...a.train, ...a.eval]).size).toBe(50);
    expect(carveOut(xs(50), 1).eval).toEqual(a.eval);
    expect(carveOut(xs(50), 2).eval).not.toEqual(a.eval);
    expect(carveOut(xs(5000), 1).eval).toHaveLength(100);
  });
  it('is skipped with a reason when the dataset is too small', () => {
    const s = carveOut(xs(9), 1);
    expect(s.eval).toEqual([]);
    expect(s.train).toHaveLength(9);
    expect(s.skipped).toMatch(/too few/);
  });
  it('permutation is a permutation, the same stream as before it shared src/util/random.ts', () => {
    expect([...permutation(20, 7)].sort((a, b) => a - b)).toEqual(xs(20));
    // Pinned values: the data order and the carve-out of a seed must never move (resume and reruns depend on them).
    expect(permutation(10, 7)).toEqual([6, 5, 8, 1, 2, 3, 4, 7, 9, 0]);
    expect(permutation(8, deriveSeed(3, STREAM.carveout))).toEqual([1, 3, 6, 5, 2, 4, 0, 7]);
  });
});
