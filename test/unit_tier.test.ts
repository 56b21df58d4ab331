// The fast tier (`npm run test:unit`) must start no process: a file that spawns belongs in SUBPROCESS_TESTS.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SLOW_TESTS, SUBPROCESS_TESTS } from './tiers.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const glob = (pattern: string) =>
  new RegExp(
    '^' +
      pattern
        .replace(/\./g, '\\.')
        .replace(/\*\*\//g, '(.*/)?')
        .replace(/\*/g, '[^/]*') +
      '$',
  );

function testFiles(dir: string): string[] {
  return fs
    .readdirSync(path.join(ROOT, dir), { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? testFiles(`${dir}/${e.name}`) : e.name.endsWith('.test.ts') ? [`${dir}/${e.name}`] : [],
    );
}

describe('test tiers', () => {
  it('no unit-tier file starts a child process (directly or through test helpers)', () => {
    const excluded = SUBPROCESS_TESTS.map(glob);
    const unit = testFiles('test').filter((f) => !excluded.some((re) => re.test(f)) && f !== 'test/unit_tier.test.ts');
    expect(unit.length).toBeGreaterThan(20);
    const spawning = unit.filter((f) =>
      /node:child_process|helpers\/run\.ts/.test(fs.readFileSync(path.join(ROOT, f), 'utf8')),
    );
    expect(spawning, 'move these to SUBPROCESS_TESTS in test/tiers.ts').toEqual([]);
  });

  it('every pattern of test/tiers.ts matches a file', () => {
    const all = testFiles('test');
    for (const p of [...SUBPROCESS_TESTS, ...SLOW_TESTS])
      expect(
        all.some((f) => glob(p).test(f)),
        p,
      ).toBe(true);
  });
});

describe('the event loop turns between tests (test/setup/yield.ts)', () => {
  let turned = false;
  it('a synchronous test schedules a macrotask', () => {
    setImmediate(() => (turned = true));
    const end = Date.now() + 20;
    while (Date.now() < end); // busy, as a tokenizing test is
  });
  it('it has run before the next test starts', () => {
    expect(turned).toBe(true);
  });
});
