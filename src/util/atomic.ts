import * as fs from 'node:fs';
import * as path from 'node:path';

/** Write a file so readers see either the old or the complete new content: temp file + fsync + rename. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  writeAtomicWith(file, (fd) => fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data));
}

/**
 * The same for content written piece by piece (large files): `write(fd)` fills a temp file next to `file`,
 * which is fsynced and renamed over `file`. A failed write or rename removes the temp file.
 */
export function writeAtomicWith(file: string, write: (fd: number) => void): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    try {
      write(fd);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true }); // a failed write (disk full, target is a directory) leaves nothing behind
    throw e;
  }
}
