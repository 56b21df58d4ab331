// sha256 of files and values, for checkpoint manifests and the input fingerprints of a job.
import * as fs from 'node:fs';
import { createHash, type Hash } from 'node:crypto';

/** sha256 (hex) of a file, read in 1 MiB chunks (a multi-GB dataset is never held whole). */
export function hashFile(file: string, h: Hash = createHash('sha256')): string {
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(file, 'r');
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** sha256 (hex) of a string. */
export function hashText(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
