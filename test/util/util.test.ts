import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseFlags } from '../../src/util/args.ts';
import { writeFileAtomic } from '../../src/util/atomic.ts';

describe('parseFlags', () => {
  const opts = { epochs: { type: 'string' }, json: { type: 'boolean' } } as const;
  const message = (argv: string[]) => {
    try {
      parseFlags('demo', argv, opts);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('no error');
  };
  it('turns node parseArgs errors into one line naming the flag and the help', () => {
    expect(message(['--epochs', '-1'])).toBe("lorasft demo: option '--epochs' needs a value (write a value that starts with '-' as --epochs=-VALUE) (see lorasft demo --help)");
    expect(message(['--bogus'])).toBe("lorasft demo: Unknown option '--bogus' (see lorasft demo --help)");
    expect(message(['--epochs'])).toMatch(/^lorasft demo: Option '--epochs <value>' argument missing/);
    for (const m of [message(['--epochs', '-1']), message(['--bogus']), message(['--json=1'])]) expect(m).not.toContain('\n');
    expect(parseFlags('demo', ['--epochs=-1', 'f'], opts)).toMatchObject({ values: { epochs: '-1' }, positionals: ['f'] });
  });
});

describe('writeFileAtomic', () => {
  it('writes the whole file, and a failed write leaves no temp file behind', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atomic-'));
    writeFileAtomic(path.join(dir, 'a', 'f.txt'), 'hello');
    expect(fs.readFileSync(path.join(dir, 'a', 'f.txt'), 'utf8')).toBe('hello');
    fs.mkdirSync(path.join(dir, 'isdir'));
    expect(() => writeFileAtomic(path.join(dir, 'isdir'), 'x')).toThrow(/EISDIR|EEXIST|ENOTEMPTY|directory/i);
    expect(fs.readdirSync(dir).sort()).toEqual(['a', 'isdir']);
    fs.rmSync(dir, { recursive: true });
  });
});
