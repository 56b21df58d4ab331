// The server's side of a deployment process (src/infer/hosted.ts): a process that has just died, before the
// server has seen its 'exit', fails the request sent to it (EPIPE) as an exited error with the exit's reason, and
// the server lives on (an unanswered write error would be an uncaught exception in the server).
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { HostedDeployment, isExited } from '../../src/infer/hosted.ts';
import { makeFixture } from '../train/fixture.ts';

const fx = makeFixture();

/** Blocks this thread (no events are handled meanwhile) until process `pid` and all its threads have ended. */
function blockUntilDead(pid: number): void {
  const alive = () => {
    try {
      const state = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
      return state !== 'Z' || fs.readdirSync(`/proc/${pid}/task`).length > 1;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 1000 && alive(); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
}

describe('hosted deployment', () => {
  it('a request sent to a process that just died fails as exited, with no uncaught error', async () => {
    const exits: string[] = [],
      uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      const { dep } = await HostedDeployment.start({ baseDir: fx.model, threads: 1 }, (why) => exits.push(why));
      process.kill(dep.pid, 'SIGKILL');
      blockUntilDead(dep.pid); // the process is gone, but its 'exit' and the channel's end are not handled yet
      // The writes fail (EPIPE); the requests wait for the 'exit' and fail with its reason, not the EPIPE.
      const why = "the deployment's inference process exited (signal SIGKILL)";
      const exitedWithWhy = (e: unknown) => isExited(e) && (e as Error).message === why;
      await expect(dep.loadLora('a', fx.root)).rejects.toSatisfy(exitedWithWhy);
      await expect(dep.encode({ text: 'x' })).rejects.toSatisfy(exitedWithWhy);
      await new Promise((r) => setTimeout(r, 100));
      expect(exits).toEqual([why]);
      expect(dep.exitReason).toBe(exits[0]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(uncaught).toEqual([]);
  }, 60_000);
});
