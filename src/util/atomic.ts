import * as fs from 'node:fs';
import * as path from 'node:path';
import { testWriteFault } from './testhooks.ts';

/** Write a file so readers see either the old or the complete new content: temp file + fsync + rename. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  writeAtomicWith(file, (fd) => fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data));
}

/**
 * The same for content written piece by piece (large files): `write(fd)` fills a temp file next to `file`,
 * which is fsynced and renamed over `file`. A failed write or rename removes the temp file, and its error names
 * `file` (fs.writeSync's own errors carry no path).
 */
export function writeAtomicWith(file: string, write: (fd: number) => void): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    try {
      testWriteFault(file);
      write(fd);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true }); // a failed write (disk full, target is a directory) leaves nothing behind
    throw withPath(e, file);
  }
}

/** An fs error without a path (write, fsync) gets `file` as its path, so the message can name it. */
function withPath(e: unknown, file: string): unknown {
  const x = e as NodeJS.ErrnoException;
  if (e instanceof Error && typeof x.code === 'string' && !x.path) x.path = file;
  return e;
}

/** fs.appendFileSync, whose errors name `file`. */
export function appendFile(file: string, data: string): void {
  try {
    testWriteFault(file);
    fs.appendFileSync(file, data);
  } catch (e) {
    throw withPath(e, file);
  }
}
