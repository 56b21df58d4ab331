import { describe, expect, it } from 'vitest';
import { carveOut } from '../../src/train/carveout.ts';
import { permutation } from '../../src/train/rng.ts';

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
  it('permutation is a permutation', () => {
    expect([...permutation(20, 7)].sort((a, b) => a - b)).toEqual(xs(20));
  });
});
