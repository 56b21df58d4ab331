// One writer per job dir: OUT_DIR/.lorasft.lock, held for the job's life. It is created whole (written to a
// temp file, then hard-linked into place, which fails if a lock exists) and holds the owner's pid, its start
// time (/proc) and the dir's inode. A lock whose process is gone (SIGKILL, power loss), whose pid now belongs to
// another process, or that was copied along with the dir (cp -a) is stale and taken over.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { processRunning } from '../util/process.ts';
import { UserError } from '../errors.ts';

export const LOCK_FILE = '.lorasft.lock';

interface LockInfo {
  pid: number;
  /** Process start time (field 22 of /proc/PID/stat), '' where /proc is absent. */
  start: string;
  /** Inode of the job dir the lock was taken in (a copied dir has another). */
  ino: number;
  since: string;
}

const held = new Map<string, number>(); // lock file -> inode of the lock this process holds

function procStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return fs.existsSync('/proc/self/stat') ? null : ''; // null: no such process
  }
}

/** Why the lock `info` no longer holds (its process is gone, ...), or null when its owner is running. */
function staleReason(info: LockInfo | null, dirIno: number): string | null {
  if (!info || !Number.isInteger(info.pid)) return 'unreadable';
  if (info.ino !== dirIno) return 'it was copied from another job dir';
  if (!processRunning(info.pid)) return `process ${info.pid} is gone`;
  const start = procStart(info.pid);
  if (start !== null && info.start && start !== info.start) return `pid ${info.pid} now belongs to another process`;
  return null;
}

function readLock(file: string): LockInfo | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
  } catch {
    return null;
  }
}

/**
 * Take the job lock of `dir` (which exists) for this process, or throw a one-line UserError naming the running
 * pid. Re-entrant within a process. `notice` reports a stale lock taken over. Returns the release function.
 */
export function acquireJobLock(dir: string, notice: (msg: string) => void = () => {}): () => void {
  const file = path.resolve(dir, LOCK_FILE);
  if (held.has(file)) return () => {};
  const dirIno = fs.statSync(dir).ino;
  const me: LockInfo = {
    pid: process.pid,
    start: procStart(process.pid) ?? '',
    ino: dirIno,
    since: new Date().toISOString(),
  };
  const tmp = `${file}.${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(me) + '\n');
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkOrCreate(tmp, file, me);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 5) throw e;
      }
      let st: fs.Stats;
      try {
        st = fs.statSync(file);
      } catch {
        continue; // released meanwhile
      }
      const info = readLock(file);
      const stale = staleReason(info, dirIno);
      if (!stale) {
        throw new UserError(
          `${dir}: job is running in process ${info!.pid} (since ${info!.since}); one writer per job dir: wait for it, or stop it with 'kill ${info!.pid}' and resume`,
        );
      }
      // Take over only the stale lock we looked at (another process may have replaced it meanwhile).
      if (fs.statSync(file).ino === st.ino) {
        fs.rmSync(file, { force: true });
        notice(`${dir}: taking over a stale job lock (${stale})`);
      }
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  held.set(file, fs.statSync(file).ino);
  return () => releaseLock(file);
}

/** link(tmp, file), failing with EEXIST if a lock exists; where hard links are unsupported, an exclusive create. */
function linkOrCreate(tmp: string, file: string, me: LockInfo): void {
  try {
    fs.linkSync(tmp, file);
  } catch (e) {
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    fs.writeFileSync(file, JSON.stringify(me) + '\n', { flag: 'wx' });
  }
}

function releaseLock(file: string): void {
  const ino = held.get(file);
  held.delete(file);
  try {
    if (fs.statSync(file).ino === ino) fs.rmSync(file, { force: true });
  } catch {
    // already gone (the dir was removed)
  }
}

// A process that exits without reaching its release (process.exit on a second Ctrl-C) still frees its locks.
process.on('exit', () => {
  for (const f of [...held.keys()]) releaseLock(f);
});
