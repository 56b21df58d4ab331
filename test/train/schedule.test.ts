import { describe, expect, it } from 'vitest';
import { learningRateAt } from '../../src/train/schedule.ts';

describe('learning-rate schedule', () => {
  const base = { learningRate: 1e-3, warmupSteps: 4, totalSteps: 14 };
  it('warms up linearly, then stays constant', () => {
    const s = { ...base, scheduler: 'constant' as const };
    expect([0, 1, 2, 3].map((i) => learningRateAt(i, s))).toEqual([2.5e-4, 5e-4, 7.5e-4, 1e-3]);
    expect(learningRateAt(4, s)).toBe(1e-3);
    expect(learningRateAt(13, s)).toBe(1e-3);
  });
  it('decays linearly to lr/(N-W) at the last step (no zero-lr step)', () => {
    const s = { ...base, scheduler: 'linear' as const };
    expect(learningRateAt(4, s)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(9, s)).toBeCloseTo(5e-4, 12);
    expect(learningRateAt(13, s)).toBeCloseTo(1e-4, 12);
  });
  it('decays on a half cosine', () => {
    const s = { ...base, scheduler: 'cosine' as const };
    expect(learningRateAt(4, s)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(9, s)).toBeCloseTo(5e-4, 12);
    expect(learningRateAt(13, s)).toBeCloseTo((1e-3 * (1 + Math.cos(Math.PI * 0.9))) / 2, 12);
  });
  it('without warmup the first step has the full rate', () => {
    expect(learningRateAt(0, { ...base, warmupSteps: 0, scheduler: 'constant' })).toBe(1e-3);
  });
  it('throws on an unknown scheduler', () => {
    expect(() => learningRateAt(5, { ...base, scheduler: 'step' as never })).toThrow(/unknown lrScheduler 'step'/);
  });
});
