// Byte-level JSONL line reader: streams a file in chunks, yields each line's bytes (without `\n`
// and a trailing `\r`), so a 50 MB line is buffered once and a huge file is never held whole.
import * as fs from 'node:fs';
import { openFile } from '../util/files.ts';

export interface RawLine {
  /** 1-based line number. */
  line: number;
  /** The line's bytes, line terminator (`\n` or `\r\n`) and a leading UTF-8 BOM on line 1 removed. */
  bytes: Buffer | null;
  /** Byte length of the line (set even when `bytes` is null because the line was too long). */
  length: number;
}

const BOM = [0xef, 0xbb, 0xbf];

/**
 * Yields every line of `file`. A final line without `\n` is yielded; the empty string after a
 * final `\n` is not. Lines longer than `maxLineBytes` are skipped over without buffering and
 * yielded with `bytes: null` so the caller can report them.
 */
export function* readLines(
  file: string,
  opts: { maxLineBytes?: number; chunkBytes?: number } = {},
): Generator<RawLine> {
  const maxLineBytes = opts.maxLineBytes ?? 256 * 1024 * 1024;
  const chunk = Buffer.allocUnsafe(opts.chunkBytes ?? 1 << 20);
  const fd = openFile(file);
  try {
    let parts: Buffer[] = []; // pieces of the current line (copies: `chunk` is reused)
    let length = 0; // bytes in the current line so far
    let lineNo = 1;
    let sawAny = false;
    const finish = (): RawLine => {
      let bytes: Buffer | null = length > maxLineBytes ? null : Buffer.concat(parts, length);
      if (bytes && lineNo === 1 && bytes.length >= 3 && BOM.every((b, i) => bytes![i] === b)) bytes = bytes.subarray(3);
      if (bytes && bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
      const out: RawLine = { line: lineNo, bytes, length };
      parts = [];
      length = 0;
      lineNo++;
      return out;
    };
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      sawAny = true;
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, start);
        const end = nl === -1 || nl >= n ? n : nl;
        if (end > start) {
          if (length + (end - start) <= maxLineBytes) parts.push(Buffer.from(chunk.subarray(start, end)));
          else parts = []; // too long: stop buffering, keep counting
          length += end - start;
        }
        if (end === n) break;
        yield finish();
        start = end + 1;
      }
    }
    if (sawAny && (length > 0 || parts.length > 0)) yield finish();
  } finally {
    fs.closeSync(fd);
  }
}

/** Byte offset (0-based) of the first byte that is not valid UTF-8, or -1 when `b` is valid. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let n = 0;
    let min = 0;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      min = 0x10000;
    } else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}
