// Learning-rate schedule: linear warmup, then constant (the managed job's behaviour) or linear / cosine decay.
import type { LrScheduler } from './config.ts';

export interface ScheduleConfig {
  learningRate: number;
  warmupSteps: number;
  totalSteps: number;
  scheduler: LrScheduler;
}

/**
 * Learning rate of optimizer step i (0-based: i steps have been taken before it).
 * Warmup: lr * (i+1)/W for i < W, so the first step already moves (HF's schedules give step 0 lr = 0).
 * After warmup, with p = (i-W)/(N-W) in [0, 1): constant lr; linear lr*(1-p); cosine lr*(1+cos(pi*p))/2.
 * No step gets lr 0, so none is wasted.
 */
export function learningRateAt(i: number, s: ScheduleConfig): number {
  const W = s.warmupSteps;
  if (i < W) return (s.learningRate * (i + 1)) / W;
  const p = Math.min(1, (i - W) / Math.max(1, s.totalSteps - W));
  switch (s.scheduler) {
    case 'constant':
      return s.learningRate;
    case 'linear':
      return s.learningRate * (1 - p);
    case 'cosine':
      return (s.learningRate * (1 + Math.cos(Math.PI * p))) / 2;
    default:
      throw new Error(`unknown lrScheduler '${s.scheduler as string}' (expected constant, linear or cosine)`);
  }
}
