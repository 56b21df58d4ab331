// Deployments coming back: the restart count starts over once a deployment has been READY for the restart window
// (with a window of 0, a process killed four times in a row comes back each time as "started again (1 of 3)"; with
// the default window the fourth kill leaves it FAILED: test/serve/deployment_verbs.test.ts). A restored deployment
// lists its LoRA models while it loads them again, and one unloaded meanwhile is not loaded; one whose process dies
// while it loads is started again.
import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeploymentRecords } from '../../src/serve/deployment_records.ts';
import { DeploymentService } from '../../src/serve/deployment_service.ts';
import { openStore } from '../../src/serve/store.ts';
import type { ModelFiles } from '../../src/infer/registry.ts';
import { makeFixture, randomAdapter } from '../train/fixture.ts';
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

/** The pid of deployment `id`'s newest process, once it differs from `not` (from a service's log lines). */
const pidOf = (lines: string[], id: string, not = 0) =>
  waitFor(`a new process for ${id}`, () => {
    const re = new RegExp(`deployments/${id} serves .*pid (\\d+)\\)`);
    const pids = lines.flatMap((l) => re.exec(l)?.[1] ?? []).map(Number);
    return pids.length && pids[pids.length - 1] !== not ? pids[pids.length - 1] : undefined;
  });
/** Deployment `id` of service `s`, once READY. */
const ready = (s: DeploymentService, id: string) =>
  waitFor(`${id} READY`, () => (s.get('me', id).state === 'READY' ? s.get('me', id) : undefined));

describe('deployment restarts', () => {
  it('the count starts over after the restart window', async () => {
    await svc.create('me', 'r', { baseModel: 'tiny' });
    let pid = await pidOf(logs, 'r');
    await ready(svc, 'r');
    for (let k = 1; k <= 4; k++) {
      process.kill(pid, 'SIGKILL');
      pid = await pidOf(logs, 'r', pid);
      await ready(svc, 'r');
      const again = logs.filter((l) => l.includes('started again'));
      expect(again).toHaveLength(k);
      expect(again[k - 1]).toMatch(/exited \(signal SIGKILL\); started again \(1 of 3\)$/);
    }
    expect(logs.join('\n')).not.toMatch(/2 of 3|not started again/);
  }, 480_000); // five model loads: slow on a loaded machine
});

/**
 * A store holding deployment "back" of the tiny model, which served LoRA models a and b, and a service on it whose
 * registry answers for a and b only once `release()` is called: until then the restored deployment is loading them.
 */
async function restoredService() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorasft-restore-'));
  const store = openStore(dir);
  const lora = async (id: string, seed: number): Promise<ModelFiles> => ({
    ...tiny,
    name: `accounts/me/models/${id}`,
    kind: 'HF_PEFT_ADDON',
    adapterDir: await randomAdapter(fx, `adapter-${id}`, seed),
  });
  const models = new Map([tiny, await lora('a', 2), await lora('b', 5)].map((m) => [m.name, m]));
  const at = '2026-11-30T00:00:00.000Z';
  const records = new DeploymentRecords(store);
  records.add({
    ...{ name: 'accounts/me/deployments/back', displayName: 'back', baseModel: tiny.name, enableAddons: true },
    ...{ state: 'READY', status: { code: 'OK', message: '' }, createTime: at, updateTime: at },
  });
  for (const id of ['a', 'b'])
    records.addDeployed({
      ...{ name: `accounts/me/deployedModels/${id}-1`, model: `accounts/me/models/${id}` },
      ...{ deployment: 'accounts/me/deployments/back', state: 'DEPLOYED', createTime: at },
    });
  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const registry = { getModel: async (n: string) => (n === tiny.name ? tiny : (await gate, models.get(n))) };
  const log: string[] = [];
  const svc = new DeploymentService(registry, { store, threads: 1, log: (m) => log.push(m) });
  const names = () => svc.listDeployedModels('me').map((d) => d.name);
  const done = async () => {
    await svc.close();
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { svc, store, log, release, names, done };
}

describe('a restored deployment', () => {
  it('lists its LoRA models while it loads them again; one unloaded meanwhile is not loaded', async () => {
    const { svc, store, release, names, done } = await restoredService();
    try {
      expect(await svc.restore()).toBe(1);
      expect(svc.get('me', 'back').state).toBe('CREATING');
      expect(names()).toEqual(['accounts/me/deployedModels/a-1', 'accounts/me/deployedModels/b-1']);
      await svc.unloadLora('me', 'a-1');
      release();
      await ready(svc, 'back');
      expect(names()).toEqual(['accounts/me/deployedModels/b-1']);
      expect(store.inStates('deployedModel', ['DEPLOYED']).map((r) => r.name)).toEqual(names());
      await expect(svc.resolve('accounts/me/models/a')).rejects.toMatchObject({ httpStatus: 404 });
      expect((await svc.resolve('accounts/me/models/b')).adapter).toBe('accounts/me/models/b');
    } finally {
      await done();
    }
  });

  it('whose process dies while it loads is started again, with its LoRA models', async () => {
    const { svc, log, release, names, done } = await restoredService();
    try {
      expect(await svc.restore()).toBe(1);
      process.kill(await pidOf(log, 'back'), 'SIGKILL'); // while load() waits for the registry: its next call there fails
      release();
      await ready(svc, 'back');
      expect(log.filter((l) => l.includes('started again'))).toEqual([
        "deployments: accounts/me/deployments/back: the deployment's inference process exited (signal SIGKILL); started again (1 of 3)",
      ]);
      expect(names()).toEqual(['accounts/me/deployedModels/a-1', 'accounts/me/deployedModels/b-1']);
      for (const m of ['a', 'b'])
        expect((await svc.resolve(`accounts/me/models/${m}`)).adapter).toBe(`accounts/me/models/${m}`);
    } finally {
      await done();
    }
  });
});
