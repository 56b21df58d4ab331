// One temporary directory per test run: TMPDIR (read by os.tmpdir() in the test workers, which inherit it, and in
// every process they start) points into it, and it is removed when the run ends. Tests make hundreds of model and
// job directories (~3 GB a run), which otherwise pile up in /tmp run after run until the disk is full.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(path.join(os.tmpdir(), 'lorasft-test-'));
  const before = process.env.TMPDIR;
  process.env.TMPDIR = root;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    rmSync(root, { recursive: true, force: true });
  };
}
