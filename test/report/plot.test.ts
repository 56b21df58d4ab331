import { describe, expect, it } from 'vitest';
import { logTicks, lossCurveSvg, niceTicks } from '../../src/report/plot.ts';

const trainRows = (n: number, loss: (s: number) => number, perEpoch = n) =>
  Array.from({ length: n }, (_, i) => ({
    step: i + 1,
    epoch: (i + 1) / perEpoch,
    train_loss: loss(i + 1),
    lr: 1,
    grad_norm: 1,
    tokens_per_s: 1,
    tokens: 1,
    time: '',
  }));
const xTicks = (svg: string) =>
  [...svg.matchAll(/<text x="[\d.]+" y="450" text-anchor="middle">([^<]+)<\/text>/g)].map((m) => m[1]);

describe('loss plot', () => {
  it('draws train and eval curves', () => {
    const svg = lossCurveSvg(
      [
        ...trainRows(4, (s) => 5 - s),
        { step: 2, epoch: 0.5, eval_loss: 3.5, time: '' },
        { step: 4, epoch: 1, eval_loss: 2, time: '' },
      ],
      'job <1>',
    );
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('job &lt;1&gt;');
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(svg.match(/<circle/g)).toHaveLength(2);
    expect(svg).toContain('best eval 2.000 @ 4');
  });
  it('maps step to the right and loss upwards (SVG y grows downwards), on linear and log axes', () => {
    const points = (svg: string) =>
      svg
        .match(/<polyline [^>]*points="([^"]+)"/)![1]
        .split(' ')
        .map((p) => p.split(',').map(Number));
    for (const loss of [(s: number) => 5 - s / 2, (s: number) => 100 / s ** 2]) {
      const pts = points(lossCurveSvg(trainRows(6, loss), 't'));
      expect(pts).toHaveLength(6);
      for (let i = 1; i < pts.length; i++) {
        expect(pts[i][0]).toBeGreaterThan(pts[i - 1][0]); // later step: further right
        expect(pts[i][1]).toBeGreaterThan(pts[i - 1][1]); // lower loss: further down
      }
    }
    // A rising loss goes up the page.
    const up = points(
      lossCurveSvg(
        trainRows(3, (s) => s),
        't',
      ),
    );
    expect(up[2][1]).toBeLessThan(up[0][1]);
  });
  it('negative losses (a negative root weight): the y axis covers them and the curve fills the plot', () => {
    for (const loss of [(s: number) => -11.8 - s / 100, (s: number) => 1 - s]) {
      const svg = lossCurveSvg(trainRows(4, loss), 't');
      const yTicks = [...svg.matchAll(/<text x="58" y="[-\d.]+" text-anchor="end">([^<]+)<\/text>/g)].map((m) =>
        Number(m[1]),
      );
      const ys = [1, 2, 3, 4].map(loss);
      expect(yTicks.length).toBeGreaterThanOrEqual(3);
      expect(Math.min(...yTicks)).toBeLessThanOrEqual(Math.max(...ys));
      expect(Math.max(...yTicks)).toBeGreaterThanOrEqual(Math.min(...ys));
      const pts = svg
        .match(/<polyline [^>]*points="([^"]+)"/)![1]
        .split(' ')
        .map((p) => Number(p.split(',')[1]));
      // Inside the plot area (y from 40 to 432), falling loss going down the page, spread over most of it.
      expect(Math.min(...pts)).toBeGreaterThanOrEqual(40);
      expect(Math.max(...pts)).toBeLessThanOrEqual(432);
      for (let i = 1; i < pts.length; i++) expect(pts[i]).toBeGreaterThan(pts[i - 1]);
      expect(pts[3] - pts[0]).toBeGreaterThan(300);
    }
    // All >= 0: the axis still starts at 0 when the losses come close to it.
    expect(
      lossCurveSvg(
        trainRows(4, (s) => 4 - s),
        't',
      ),
    ).toMatch(/text-anchor="end">0<\/text>/);
  });
  it('integer step ticks, even for a few steps', () => {
    expect(
      xTicks(
        lossCurveSvg(
          trainRows(3, (s) => 3 - s / 2),
          't',
        ),
      ),
    ).toEqual(['0', '1', '2', '3']);
  });
  it('a log y axis when the losses span more than 10x, linear otherwise', () => {
    const wide = lossCurveSvg(
      trainRows(20, (s) => 100 / s ** 2),
      't',
    );
    expect(wide).toContain('log scale');
    expect(
      lossCurveSvg(
        trainRows(20, (s) => 5 - s / 10),
        't',
      ),
    ).not.toContain('log scale');
    expect(logTicks(0.2, 120)).toEqual([0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]);
  });
  it('no eval legend without eval points; epoch boundaries and the early-stop step are marked', () => {
    const svg = lossCurveSvg(
      trainRows(12, (s) => 3 - s / 10, 4),
      't',
      { earlyStopStep: 12 },
    );
    expect(svg).toContain('train loss');
    expect(svg).not.toContain('eval loss');
    expect(svg).toContain('>epoch 1<');
    expect(svg).toContain('>epoch 2<');
    expect(svg).not.toContain('>epoch 3<'); // the last step is the end of the plot
    expect(svg).toContain('>early stop<');
  });
  it('picks nice ticks', () => {
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(1.3, 2.2, 5)).toEqual([1.4, 1.6, 1.8, 2, 2.2]);
    expect(niceTicks(0, 3, 8, 1)).toEqual([0, 1, 2, 3]);
  });
});
