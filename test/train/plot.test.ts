import { describe, expect, it } from 'vitest';
import { lossCurveSvg, niceTicks } from '../../src/train/plot.ts';

describe('loss plot', () => {
  it('draws train and eval curves', () => {
    const rows = [1, 2, 3, 4].map((s) => ({ step: s, epoch: s / 4, train_loss: 5 - s, lr: 1, grad_norm: 1, tokens_per_s: 1, tokens: 1, time: '' }));
    const svg = lossCurveSvg([...rows, { step: 2, epoch: 0.5, eval_loss: 3.5, time: '' }, { step: 4, epoch: 1, eval_loss: 2, time: '' }], 'job <1>');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('job &lt;1&gt;');
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(svg.match(/<circle/g)).toHaveLength(2);
  });
  it('picks nice ticks', () => {
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(1.3, 2.2, 5)).toEqual([1.4, 1.6, 1.8, 2, 2.2]);
  });
});
