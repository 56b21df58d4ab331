import { describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/index.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { numberFlag, parseFlags } from '../../src/util/args.ts';
import { writeFileAtomic } from '../../src/util/atomic.ts';
import { readJsonFile, readJsonObject, readTextFile, requireDir, requireFile } from '../../src/util/files.ts';

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
    expect(message(['--epochs', '-1'])).toBe(
      "lorasft demo: option '--epochs' needs a value (write a value that starts with '-' as --epochs=-VALUE) (see lorasft demo --help)",
    );
    expect(message(['--bogus'])).toBe("lorasft demo: Unknown option '--bogus' (see lorasft demo --help)");
    expect(message(['--epochs'])).toMatch(/^lorasft demo: Option '--epochs <value>' argument missing/);
    for (const m of [message(['--epochs', '-1']), message(['--bogus']), message(['--json=1'])])
      expect(m).not.toContain('\n');
    expect(parseFlags('demo', ['--epochs=-1', 'f'], opts)).toMatchObject({
      values: { epochs: '-1' },
      positionals: ['f'],
    });
  });
});

describe('numberFlag', () => {
  it('parses and range-checks a flag value, naming flag and value when it is wrong', () => {
    expect(numberFlag('epochs', undefined, { above: 0 })).toBeUndefined();
    expect(numberFlag('epochs', '0.5', { above: 0 })).toBe(0.5);
    expect(numberFlag('n', '4', { integer: true, min: 2 })).toBe(4);
    expect(() => numberFlag('epochs', '0', { above: 0 })).toThrowError("--epochs: must be a number > 0, got '0'");
    expect(() => numberFlag('n', '2.5', { integer: true, min: 2 })).toThrowError(
      "--n: must be an integer >= 2, got '2.5'",
    );
    expect(numberFlag('port', '65535', { integer: true, min: 0, max: 65535 })).toBe(65535);
    expect(() => numberFlag('port', '65536', { integer: true, min: 0, max: 65535 })).toThrowError(
      "--port: must be an integer >= 0 and <= 65535, got '65536'",
    );
    for (const v of ['', ' ', 'abc', 'NaN', 'Infinity', '1e999'])
      expect(() => numberFlag('n', v, { min: 0 })).toThrowError(/^--n: must be a number >= 0, got /);
  });
});

describe('writeFileAtomic', () => {
  it('writes the whole file, and a failed write leaves no temp file behind', () => {
    const dir = tmpDir('atomic');
    writeFileAtomic(path.join(dir, 'a', 'f.txt'), 'hello');
    expect(fs.readFileSync(path.join(dir, 'a', 'f.txt'), 'utf8')).toBe('hello');
    fs.mkdirSync(path.join(dir, 'isdir'));
    expect(() => writeFileAtomic(path.join(dir, 'isdir'), 'x')).toThrow(/EISDIR|EEXIST|ENOTEMPTY|directory/i);
    expect(fs.readdirSync(dir).sort()).toEqual(['a', 'isdir']);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('user files', () => {
  it('names the file and what is wrong in one line, never an fs stack trace', () => {
    const dir = tmpDir('files');
    const f = (name: string, text: string) => (fs.writeFileSync(path.join(dir, name), text), path.join(dir, name));
    const nope = path.join(dir, 'nope.json');
    expect(() => readJsonFile(nope, 'expected a batch')).toThrowError(`${nope}: no such file (expected a batch)`);
    expect(() => readTextFile(dir)).toThrowError(`${dir}: is a directory, expected a file`);
    expect(() => requireFile(dir, 'expected a .jsonl dataset')).toThrowError(
      `${dir}: is a directory (expected a .jsonl dataset)`,
    );
    expect(() => readJsonFile(f('bad.json', '{"a": '))).toThrowError(
      `${path.join(dir, 'bad.json')}:1:7: invalid JSON: unexpected end of file`,
    );
    expect(() => readJsonFile(f('two.json', '{"a": 1,\n "b": [1, 2,]}'))).toThrowError(
      `${path.join(dir, 'two.json')}:2:13: invalid JSON: unexpected ']'`,
    );
    expect(() => readJsonObject(f('arr.json', '[1]'))).toThrowError(/arr.json: expected a JSON object/);
    expect(readJsonObject(f('ok.json', '{"a": 1}'))).toEqual({ a: 1 });
    expect(() => requireDir(nope, 'a model dir')).toThrowError(`${nope}: no such directory (expected a model dir)`);
    expect(() => requireDir(path.join(dir, 'ok.json'), 'a model dir')).toThrowError(
      /ok.json: is a file, expected a model dir/,
    );
    expect(() => requireDir(dir, 'a model dir')).not.toThrow();
    fs.rmSync(dir, { recursive: true });
  });
});
