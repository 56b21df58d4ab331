// Commands lorasft prints ("resume with: ...", "try it: ...") must run as written in the user's shell, from
// any directory: the program is `lorasft` when that name on PATH is this installation (bash scripts/setup.sh
// links it), else `node /abs/path/bin/lorasft.js`; paths are absolute and quoted for POSIX shells when needed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/lorasft.js');

/** Quote `s` for sh/bash when it holds anything but safe characters (single quotes; ' itself as '\''). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The realpath of `lorasft` on the user's PATH, or null. A node_modules/.bin dir is skipped: npx and npm run put
 * theirs first on the PATH of the command they run (npx links this checkout there), not on the user's shell's.
 */
function lorasftOnPath(): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir || /(^|[\\/])node_modules[\\/]\.bin[\\/]?$/.test(dir)) continue;
    try {
      return fs.realpathSync(path.join(dir, 'lorasft'));
    } catch {
      // not in this dir
    }
  }
  return null;
}

/** How to run this lorasft from any directory. */
export function lorasftProgram(): string {
  return lorasftOnPath() === fs.realpathSync(BIN) ? 'lorasft' : `node ${shellQuote(BIN)}`;
}

/** Arguments as one shell line: `train --dataset 'my data.jsonl'`. */
export function shellArgs(args: string[]): string {
  return args.map(shellQuote).join(' ');
}

/** A lorasft command line to print: `lorasft train --resume '/abs/my out'`. Path arguments: pass them resolved. */
export function lorasftCommand(...args: string[]): string {
  return [lorasftProgram(), shellArgs(args)].join(' ');
}

/**
 * A recorded command (`args`: shellArgs of the argv after `lorasft`, as typed, relative paths and all) to run again
 * as written: from `cwd`, the dir it was started in, with `cd` first when that is not this process's.
 */
export function lorasftRerun(args: string, cwd: string): string {
  return `${path.resolve(cwd) === process.cwd() ? '' : `cd ${shellQuote(cwd)} && `}${lorasftProgram()} ${args}`;
}

/** An absolute path, for printed commands that must work from any directory. */
export const abs = (p: string): string => path.resolve(p);
