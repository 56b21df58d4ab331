// Printed commands run as written: the program is `lorasft` only when PATH's lorasft is this checkout.
import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BIN, tmpDir } from '../helpers/index.ts';
import { lorasftCommand, lorasftProgram, shellQuote } from '../../src/util/invocation.ts';

const PATH = process.env.PATH;
afterEach(() => {
  process.env.PATH = PATH;
});

describe('printed commands', () => {
  it('quotes arguments for POSIX shells only when needed', () => {
    expect(shellQuote('/tmp/out/x-1')).toBe('/tmp/out/x-1');
    expect(shellQuote('/tmp/my runs/x')).toBe("'/tmp/my runs/x'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('What is 2+2?')).toBe("'What is 2+2?'");
    expect(shellQuote('$HOME')).toBe("'$HOME'");
  });

  it('uses `lorasft` when PATH finds this checkout, else node with the absolute bin path', () => {
    const dir = tmpDir('inv');
    process.env.PATH = dir;
    expect(lorasftProgram()).toBe(`node ${BIN}`);
    fs.symlinkSync('/bin/true', path.join(dir, 'lorasft')); // another program of that name
    expect(lorasftProgram()).toBe(`node ${BIN}`);
    fs.rmSync(path.join(dir, 'lorasft'));
    fs.symlinkSync(BIN, path.join(dir, 'lorasft'));
    expect(lorasftCommand('train', '--resume', '/a b/out')).toBe("lorasft train --resume '/a b/out'");
  });

  it("skips npx's and npm run's node_modules/.bin: that lorasft is not on the user's PATH", () => {
    const npx = path.join(tmpDir('npx'), 'node_modules', '.bin'); // `npx lorasft` links this checkout here
    fs.mkdirSync(npx, { recursive: true });
    fs.symlinkSync(BIN, path.join(npx, 'lorasft'));
    const user = tmpDir('inv');
    process.env.PATH = [npx, user].join(path.delimiter);
    expect(lorasftProgram()).toBe(`node ${BIN}`);
    fs.symlinkSync('/bin/true', path.join(user, 'lorasft')); // the user's lorasft is another program
    expect(lorasftProgram()).toBe(`node ${BIN}`);
    fs.rmSync(path.join(user, 'lorasft'));
    fs.symlinkSync(BIN, path.join(user, 'lorasft')); // linked by scripts/setup.sh
    expect(lorasftProgram()).toBe('lorasft');
  });
});
