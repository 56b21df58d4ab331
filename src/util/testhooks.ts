// Deterministic fault injection for the tests (a kill, a signal, a full disk or a pause at a named point of a
// job), so that crash and concurrency tests never depend on timing. Off unless LORASFT_TEST_HOOKS is set:
//   LORASFT_TEST_HOOKS="ACTION@POINT[,ACTION@POINT...]"
//   ACTION: kill (SIGKILL self), sigterm / sigint (SIGTERM / SIGINT self), enospc (the write fails as on a full disk), pause
//   (write POINT's marker file OUT/.test-paused and wait until a signal arrives).
//   POINT: a name such as 'after-job-json', 'loading', 'after-step-3', or for enospc a substring of the written path;
//   'JOB/after-step-3' acts only in job JOB (a server's trainers share its environment).
import * as fs from 'node:fs';
import * as path from 'node:path';

function actions(point: string, job?: string): string[] {
  const spec = process.env.LORASFT_TEST_HOOKS;
  if (!spec) return [];
  return spec.split(',').flatMap((s) => {
    const [action, at] = s.split('@');
    return at === point || (job !== undefined && at === `${job}/${point}`) ? [action] : [];
  });
}

/** Run the kill / sigterm hooks set for `point` of job `job` (a no-op in normal runs). */
export function testHook(point: string, job?: string): void {
  for (const a of actions(point, job)) {
    if (a === 'kill') process.kill(process.pid, 'SIGKILL');
    if (a === 'sigterm') process.kill(process.pid, 'SIGTERM');
    if (a === 'sigint') process.kill(process.pid, 'SIGINT');
  }
}

/** The pause hook: writes OUT/.test-paused (holding `point`) and resolves once `stopped()` turns true. */
export async function testPause(point: string, job: string, outDir: string, stopped: () => boolean): Promise<void> {
  if (!actions(point, job).includes('pause')) return;
  fs.writeFileSync(path.join(outDir, '.test-paused'), point);
  while (!stopped()) await new Promise((r) => setTimeout(r, 20));
  fs.rmSync(path.join(outDir, '.test-paused'), { force: true });
}

/** An injected full disk: throws ENOSPC (as fs.writeSync does, without a path) when enospc@SUBSTRING matches `file`. */
export function testWriteFault(file: string): void {
  const spec = process.env.LORASFT_TEST_HOOKS;
  if (!spec) return;
  for (const s of spec.split(',')) {
    const [action, at] = s.split('@');
    if (action === 'enospc' && at && file.includes(at)) {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
        code: 'ENOSPC',
        errno: -28,
        syscall: 'write',
      });
    }
  }
}
