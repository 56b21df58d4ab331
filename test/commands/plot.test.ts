import { describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/index.ts';
import { lorasft } from '../helpers/run.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';

describe('lorasft plot', () => {
  it('writes an SVG of the loss curves from metrics.jsonl', async () => {
    const dir = tmpDir('plot');
    const rows = [{ step: 0, epoch: 0, eval_loss: 3, time: '' }];
    for (let s = 1; s <= 20; s++)
      rows.push({
        step: s,
        epoch: s / 20,
        train_loss: 3 - s / 10,
        lr: 1e-4,
        grad_norm: 1,
        tokens_per_s: 100,
        tokens: 10,
        time: '',
      } as never);
    rows.push({ step: 20, epoch: 1, eval_loss: 1.2, time: '' });
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const r = await lorasft(['plot', dir]);
    expect(r.status, r.stderr).toBe(0);
    const svg = fs.readFileSync(path.join(dir, 'loss.svg'), 'utf8');
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('train loss');
    // The title: the displayName, else the job id (not the whole resource name).
    fs.writeFileSync(
      path.join(dir, 'job.json'),
      JSON.stringify({ name: 'accounts/local/supervisedFineTuningJobs/abc-123', state: 'JOB_STATE_EARLY_STOPPED' }),
    );
    expect((await lorasft(['plot', dir])).status).toBe(0);
    const titled = fs.readFileSync(path.join(dir, 'loss.svg'), 'utf8');
    expect(titled).toContain('>abc-123 (EARLY_STOPPED)</text>');
    expect(titled).toContain('>early stop<');
    fs.rmSync(path.join(dir, 'job.json'));
    const missing = await lorasft(['plot', path.join(dir, 'nope')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(
      `error: ${path.join(dir, 'nope')}: no such directory (expected the output dir of a lorasft train run)\n`,
    );
    fs.mkdirSync(path.join(dir, 'empty'));
    const noMetrics = await lorasft(['plot', path.join(dir, 'empty')]);
    expect(noMetrics.stderr).toMatch(/empty\/metrics.jsonl: not found/);
    // Paths that cannot be used: one error line each, no stack trace, nothing written.
    const file = path.join(dir, 'afile');
    fs.writeFileSync(file, '');
    const sub = path.join(dir, 'adir');
    fs.mkdirSync(sub);
    for (const [args, msg] of [
      [
        [dir, '--out', sub],
        `${sub}: is a directory; --out names the file to write (e.g. ${path.join(sub, 'loss.svg')})`,
      ],
      [[dir, '--out', path.join(file, 'x.svg')], `${path.join(file, 'x.svg')}: cannot be created, ${file} is a file`],
      [[file], `${file}: is a file, expected the output dir of a lorasft train run`],
      [
        [dir, dir],
        'lorasft plot: expected one OUT_DIR, got 2 (usage: lorasft plot OUT_DIR [--out FILE.svg] [--overwrite])',
      ],
    ] as [string[], string][]) {
      const r = await lorasft(['plot', ...args]);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toBe(`error: ${msg}\n`);
    }
    expect(fs.readdirSync(sub)).toEqual([]);
  });
  it('replaces a plot it wrote, but no other file without --overwrite', async () => {
    const dir = tmpDir('plot-ow');
    const rows = [1, 2, 3].map((s) => ({ step: s, epoch: s / 3, train_loss: 3 - s / 2, lr: 1, grad_norm: 1 }));
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const adapter = path.join(dir, 'adapter_model.safetensors');
    fs.writeFileSync(adapter, 'ADAPTER BYTES');
    const metrics = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8');
    // Re-running the same command replaces its own plot (the default file, or an explicit --out).
    for (const args of [[dir], [dir, '--out', path.join(dir, 'mine.svg')]]) {
      for (let i = 0; i < 2; i++) {
        const r = await lorasft(['plot', ...args]);
        expect(r.status, r.stderr).toBe(0);
      }
    }
    // An adapter, an unrelated SVG: one line, exit 1, the file untouched, no temp file left.
    const other = path.join(dir, 'logo.svg');
    fs.writeFileSync(other, '<svg xmlns="http://www.w3.org/2000/svg"></svg>\n');
    for (const f of [adapter, other]) {
      const before = fs.readFileSync(f, 'utf8');
      const r = await lorasft(['plot', dir, '--out', f]);
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(
        `error: ${f}: exists and is not a plot lorasft wrote; choose another --out, or pass --overwrite to replace it\n`,
      );
      expect(fs.readFileSync(f, 'utf8')).toBe(before);
    }
    // The metrics file it reads: never, even with --overwrite.
    const m = await lorasft(['plot', dir, '--out', path.join(dir, 'metrics.jsonl'), '--overwrite']);
    expect(m.stderr).toBe(
      `error: --out ${path.join(dir, 'metrics.jsonl')}: must differ from the metrics file the plot is drawn from\n`,
    );
    expect(fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')).toBe(metrics);
    // --overwrite: the user asked for it.
    const r = await lorasft(['plot', dir, '--out', other, '--overwrite']);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(other, 'utf8')).toMatch(/^<svg/);
    expect(fs.readdirSync(dir).sort()).toEqual(
      ['adapter_model.safetensors', 'logo.svg', 'loss.svg', 'metrics.jsonl', 'mine.svg'].sort(),
    );
  });
});
