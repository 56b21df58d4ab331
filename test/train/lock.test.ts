import { describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/index.ts';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { acquireJobLock, LOCK_FILE } from '../../src/train/lock.ts';
import { UserError } from '../../src/errors.ts';
import { processRunning } from '../../src/util/process.ts';

const lockOf = (dir: string, pid: number, ino = fs.statSync(dir).ino) =>
  fs.writeFileSync(
    path.join(dir, LOCK_FILE),
    JSON.stringify({ pid, start: '', ino, since: '2026-01-01T00:00:00.000Z' }),
  );

describe('job lock', () => {
  const dir = tmpDir('lock');

  it('is held until released, and re-entrant within the process', () => {
    const release = acquireJobLock(dir);
    expect(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    acquireJobLock(dir)(); // nested: releasing it keeps the outer lock
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(true);
    release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('refuses a lock whose process runs, in one line naming its pid', () => {
    lockOf(dir, process.ppid); // a live process that is not us
    expect(() => acquireJobLock(dir)).toThrow(
      new UserError(
        `${dir}: job is running in process ${process.ppid} (since 2026-01-01T00:00:00.000Z); one writer per job dir: wait for it, or stop it with 'kill ${process.ppid}' and resume`,
      ),
    );
    expect(fs.readdirSync(dir)).toEqual([LOCK_FILE]);
  });

  it('takes over a stale lock: its process is gone, or it was copied with the dir', () => {
    const gone = spawnSync('true').pid!;
    const notices: string[] = [];
    lockOf(dir, gone);
    acquireJobLock(dir, (m) => notices.push(m))();
    lockOf(dir, process.ppid, fs.statSync(os.tmpdir()).ino);
    acquireJobLock(dir, (m) => notices.push(m))();
    expect(notices).toEqual([
      `${dir}: taking over a stale job lock (process ${gone} is gone)`,
      `${dir}: taking over a stale job lock (it was copied from another job dir)`,
    ]);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('takes over the lock of a process that exited but is not reaped yet (a zombie)', async () => {
    // perl (Debian's perl-base is essential) forks a child that exits at once and never reaps it: a zombie.
    const script = '$| = 1; my $pid = fork(); exit 0 if $pid == 0; print "$pid\\n"; sleep 30';
    const parent = spawn('perl', ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = Number(await new Promise<string>((res) => parent.stdout.once('data', (d) => res(String(d)))));
      await waitUntil(() => fs.readFileSync(`/proc/${zombie}/stat`, 'utf8').includes(') Z'));
      expect(processRunning(zombie)).toBe(false);
      lockOf(dir, zombie);
      const notices: string[] = [];
      acquireJobLock(dir, (m) => notices.push(m))();
      expect(notices).toEqual([`${dir}: taking over a stale job lock (process ${zombie} is gone)`]);
      expect(processRunning(parent.pid!)).toBe(true);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

async function waitUntil(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(ok()).toBe(true);
}
