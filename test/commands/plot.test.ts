import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const BIN = new URL('../../bin/lorasft.js', import.meta.url).pathname;

describe('lorasft plot', () => {
  it('writes an SVG of the loss curves from metrics.jsonl', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorasft-plot-'));
    const rows = [{ step: 0, epoch: 0, eval_loss: 3, time: '' }];
    for (let s = 1; s <= 20; s++) rows.push({ step: s, epoch: s / 20, train_loss: 3 - s / 10, lr: 1e-4, grad_norm: 1, tokens_per_s: 100, tokens: 10, time: '' } as never);
    rows.push({ step: 20, epoch: 1, eval_loss: 1.2, time: '' });
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const r = spawnSync('node', [BIN, 'plot', dir], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const svg = fs.readFileSync(path.join(dir, 'loss.svg'), 'utf8');
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('train loss');
    const missing = spawnSync('node', [BIN, 'plot', path.join(dir, 'nope')], { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/metrics.jsonl: not found/);
  });
});
