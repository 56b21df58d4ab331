// Reading the user's input files and dirs with one-line, actionable errors (UserError) instead of fs stack traces.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { shellQuote } from './invocation.ts';
import { jsonSyntaxError } from './json.ts';

/** Why `file` cannot be read as a regular file, or null when it can: 'no such file', 'is a directory', ... */
function fileProblem(file: string): string | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? 'no such file'
      : code === 'ENOTDIR'
        ? 'no such file (a parent is not a directory)'
        : `cannot read (${code})`;
  }
  return st.isDirectory() ? 'is a directory' : null;
}

/** Throws unless `file` is an existing file (not a directory); `what` as in readTextFile. */
export function requireFile(file: string, what?: string): void {
  const problem = fileProblem(file);
  if (problem)
    throw new UserError(
      `${file}: ${problem}${what ? ` (${what})` : problem === 'is a directory' ? ', expected a file' : ''}`,
    );
}

/**
 * The text of a file the user named. `what` says what the file should be, and is added to a missing-file
 * error (e.g. 'expected a Hugging Face model directory with config.json').
 */
export function readTextFile(file: string, what?: string): string {
  requireFile(file, what);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * fs.openSync(file, 'r') for a file the user named: a missing file, a directory or an unreadable one (EACCES, a
 * socket) is a one-line UserError; `what` as in readTextFile. The caller closes the descriptor.
 */
export function openFile(file: string, what?: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      `${file}: ${code === 'ENOENT' ? 'no such file' : `cannot read (${code ?? (e as Error).message})`}${what ? ` (${what})` : ''}`,
    );
  }
  if (fs.fstatSync(fd).isDirectory()) {
    fs.closeSync(fd);
    throw new UserError(`${file}: is a directory${what ? ` (${what})` : ', expected a file'}`);
  }
  return fd;
}

/** A JSON file, parsed; errors `FILE: no such file (what)`, `FILE: is a directory ...`, `FILE: invalid JSON (reason)`. */
export function readJsonFile(file: string, what?: string): unknown {
  const text = readTextFile(file, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(jsonSyntaxError(file, text));
  }
}

/** A JSON file holding an object (config files); `what` as in readTextFile. */
export function readJsonObject(file: string, what?: string): Record<string, unknown> {
  const j = readJsonFile(file, what);
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new UserError(`${file}: expected a JSON object`);
  return j as Record<string, unknown>;
}

/** Throws unless `dir` is an existing directory; `what` names what it should hold (e.g. 'a Hugging Face model directory'). */
export function requireDir(dir: string, what: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new UserError(`${dir}: no such directory (expected ${what})`);
  }
  if (!st.isDirectory()) throw new UserError(`${dir}: is a file, expected ${what}`);
}

/**
 * Whether `name` ends in .jsonl, the one dataset file format the managed service takes (sft-text-guide.md, "Prepare a
 * dataset": "File format: `.jsonl`"). Case-insensitive, so DATA.JSONL passes: the guide gives only the extension, and
 * a check of one most likely ignores case (files saved on Windows often come upper-case); refusing those would be the
 * worse mistake.
 */
function isJsonlName(name: string): boolean {
  return name.toLowerCase().endsWith('.jsonl');
}

/**
 * Why a dataset file named `name` is refused for its name, with the fix (a name ending in .jsonl, or decompressing
 * it first), or null when the name ends in .jsonl. Said after the name: `data.json: not a .jsonl file ...`.
 */
export function jsonlNameProblem(name: string): string | null {
  if (isJsonlName(name)) return null;
  const stem = path.parse(path.basename(name)).name;
  const to = path.join(path.dirname(name), isJsonlName(stem) ? stem : `${stem}.jsonl`);
  const fix = /\.gz$/i.test(name)
    ? `decompress it first (e.g. zcat ${shellQuote(name)} > ${shellQuote(to)})`
    : /\.(bz2|xz|zst|zip)$/i.test(name)
      ? `decompress it into ${to} first`
      : `rename it to ${to}`;
  return `not a .jsonl file (a dataset is JSON Lines, one example per line, in a file named *.jsonl); ${fix}`;
}

/**
 * Throws unless the dataset file the user named ends in .jsonl (see isJsonlName); `source` names where it was given
 * (`--dataset`, `cfg.json:3`) when that is not the command's argument. Only regular files are checked: a missing
 * file or a directory is left to the reader's own error, and /dev/stdin, /dev/fd/N or a pipe have no name to check.
 */
export function requireJsonlName(file: string, source?: string): void {
  const problem = jsonlNameProblem(file);
  if (!problem || /^\/(dev|proc)\//.test(path.resolve(file))) return;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return;
  }
  if (!st.isFile()) return;
  throw new UserError(source ? `${source}: ${file} is ${problem}` : `${file}: ${problem}`);
}
