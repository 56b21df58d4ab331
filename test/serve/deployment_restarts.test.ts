// A deployment's restart count starts over once it has been READY for the restart window: with a window of 0, a
// process killed four times in a row comes back each time as "started again (1 of 3)" (with the default window the
// fourth kill leaves it FAILED: test/serve/deployment_verbs.test.ts).
import { afterAll, describe, expect, it } from 'vitest';
import { DeploymentService } from '../../src/serve/deployment_service.ts';
import type { ModelFiles } from '../../src/infer/registry.ts';
import { makeFixture } from '../train/fixture.ts';
import { waitFor } from './helpers.ts';

const fx = makeFixture();
const tiny: ModelFiles = {
  name: 'accounts/me/models/tiny',
  kind: 'HF_BASE_MODEL',
  baseModel: 'accounts/me/models/tiny',
  baseModelDir: fx.model,
  adapterDir: null,
};
const logs: string[] = [];
const svc = new DeploymentService(
  { getModel: async (n) => (n === tiny.name ? tiny : undefined) },
  { restartWindowMs: 0, threads: 1, log: (m) => logs.push(m) },
);
afterAll(() => svc.close());

/** The pid of the newest process of deployment r, once it differs from `not` (from the service's log lines). */
const pidOf = (not = 0) =>
  waitFor('a new process', () => {
    const pids = logs.flatMap((l) => /deployments\/r serves .*pid (\d+)\)/.exec(l)?.[1] ?? []).map(Number);
    return pids.length && pids[pids.length - 1] !== not ? pids[pids.length - 1] : undefined;
  });
const ready = () => waitFor('READY', () => (svc.get('me', 'r').state === 'READY' ? svc.get('me', 'r') : undefined));

describe('deployment restarts', () => {
  it('the count starts over after the restart window', async () => {
    await svc.create('me', 'r', { baseModel: 'tiny' });
    let pid = await pidOf();
    await ready();
    for (let k = 1; k <= 4; k++) {
      process.kill(pid, 'SIGKILL');
      pid = await pidOf(pid);
      await ready();
      const again = logs.filter((l) => l.includes('started again'));
      expect(again).toHaveLength(k);
      expect(again[k - 1]).toMatch(/exited \(signal SIGKILL\); started again \(1 of 3\)$/);
    }
    expect(logs.join('\n')).not.toMatch(/2 of 3|not started again/);
  });
});
