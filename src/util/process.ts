// Whether a process is still running: signal 0 reaches it, and it is not a zombie (an exited process its parent,
// or the init that adopted it, has not reaped yet: in a container that can take seconds).
import * as fs from 'node:fs';

export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: signal 0 is all there is
  }
}
