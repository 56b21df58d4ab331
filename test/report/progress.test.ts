import { describe, expect, it } from 'vitest';
import { fitLine, formatDuration, Progress } from '../../src/report/progress.ts';

function sink(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { isTTY, columns: 200, write: (s: string) => out.push(s) } };
}
const info = (step: number) => ({
  step,
  total: 300,
  epoch: step / 100,
  trainLoss: 2.5,
  evalLoss: step > 1 ? 2.25 : null,
  tokensPerS: 1234.4,
  secPerStep: 2,
});

describe('progress', () => {
  it('redraws one line on a TTY with step/total, loss, eval loss, tok/s and ETA', () => {
    const { out, stream } = sink(true);
    const p = new Progress(stream, 300);
    p.step(info(1));
    p.step(info(2));
    p.log('step 2/300: eval loss 2.2500');
    p.end();
    expect(out[0]).toMatch(/^\r\x1b\[K\[\.+\] 1\/300 ep 0\.01 loss 2\.5000 \| 1234 tok\/s \| ETA 9m58s$/);
    expect(out[1]).toContain('eval 2.2500');
    expect(out[2]).toBe('\r\x1b[K');
    expect(out[3]).toBe('step 2/300: eval loss 2.2500\n');
  });
  it('writes plain lines (about 100 per run) otherwise', () => {
    const { out, stream } = sink(false);
    const p = new Progress(stream, 300);
    for (let s = 1; s <= 300; s++) p.step(info(s));
    expect(out).toHaveLength(100);
    expect(out[0]).toBe('step 3/300 epoch 0.03 loss 2.5000 eval 2.2500 | 1234 tok/s | ETA 9m54s\n');
    expect(out.every((l) => !l.includes('\r'))).toBe(true);
  });
  it('formats durations', () => {
    expect(formatDuration(5)).toBe('5s');
    expect(formatDuration(65)).toBe('1m05s');
    expect(formatDuration(3700)).toBe('1h01m');
    expect(formatDuration(NaN)).toBe('?');
  });
});

describe('progress line width', () => {
  it('fits the terminal: drops bar, epoch, tok/s, eval, loss in that order; step and ETA always stay', () => {
    const p = { step: 12, total: 300, epoch: 0.04, trainLoss: 2.5, evalLoss: 2.25, tokensPerS: 1234.4, secPerStep: 2 };
    const full = fitLine(p, '9m36s', 200);
    expect(full).toBe('[#.......................] 12/300 ep 0.04 loss 2.5000 eval 2.2500 | 1234 tok/s | ETA 9m36s');
    expect(fitLine(p, '9m36s', 80)).toBe('12/300 ep 0.04 loss 2.5000 eval 2.2500 | 1234 tok/s | ETA 9m36s');
    expect(fitLine(p, '9m36s', 50)).toBe('12/300 loss 2.5000 eval 2.2500 | ETA 9m36s');
    expect(fitLine(p, '9m36s', 30)).toBe('12/300 loss 2.5000 | ETA 9m36s');
    expect(fitLine(p, '9m36s', 10)).toBe('12/300 | ETA 9m36s');
    for (const w of [20, 40, 60, 79]) expect(fitLine(p, '9m36s', w).length <= w || w < 19).toBe(true);
  });
  it('a TTY line never exceeds the terminal width', () => {
    const { out, stream } = sink(true);
    stream.columns = 40;
    new Progress(stream, 300).step(info(2));
    expect(out[0].replace('\r\x1b[K', '').length).toBeLessThan(40);
    expect(out[0]).toContain('2/300');
    expect(out[0]).toContain('ETA');
  });
});
