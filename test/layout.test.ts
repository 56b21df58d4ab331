// The import graph of src/ (DESIGN.md): src/ never imports scripts/ or test/, and a lower floor never imports a
// higher one (data below model below train; the engine below everything but util).
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const SRC = path.join(ROOT, 'src');

function tsFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
    );
}

/** [importing file, imported file], both relative to the repo root, for every relative import in src/. */
function edges(): [string, string][] {
  const out: [string, string][] = [];
  for (const f of tsFiles(SRC)) {
    const text = fs.readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      out.push([path.relative(ROOT, f), path.relative(ROOT, path.resolve(path.dirname(f), m[1]))]);
    }
  }
  return out;
}

describe('the import graph of src/', () => {
  const all = edges();

  it('finds the imports it checks', () => {
    expect(all.length).toBeGreaterThan(100);
    expect(all).toContainEqual(['src/train/demo.ts', 'src/model/tiny.ts']);
  });

  it('has no arrow from src/ to scripts/ or test/', () => {
    expect(all.filter(([, to]) => !to.startsWith('src/'))).toEqual([]);
  });

  it('has no arrow from a lower floor to a higher one', () => {
    const higher: Record<string, string[]> = {
      data: ['model', 'train', 'infer', 'report', 'serve', 'client', 'commands'],
      model: ['train', 'infer', 'report', 'serve', 'client', 'commands'],
      train: ['infer', 'serve', 'client', 'commands'],
      infer: ['train', 'serve', 'client', 'commands'],
      util: ['data', 'model', 'train', 'infer', 'report', 'serve', 'commands', 'ops', 'kernels', 'backend'],
    };
    const folder = (f: string) => f.split('/')[1];
    const bad = all.filter(([from, to]) => higher[folder(from)]?.includes(folder(to)));
    expect(bad).toEqual([]);
  });
});
