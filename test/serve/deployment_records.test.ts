// Stored deployments whose models are gone: restore() shows the deployment FAILED (NOT_FOUND) without loading
// anything, drops its DeployedModels, and removes DeployedModels of no deployment; delete() forgets both kinds.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeploymentRecords } from '../../src/serve/deployment_records.ts';
import { DeploymentService } from '../../src/serve/deployment_service.ts';
import { openStore } from '../../src/serve/store.ts';

const dep = (id: string, baseModel: string) => ({
  name: `accounts/me/deployments/${id}`,
  displayName: id,
  baseModel,
  enableAddons: true,
  state: 'READY' as const,
  status: { code: 'OK', message: '' },
  createTime: '2026-11-30T00:00:00.000Z',
  updateTime: '2026-11-30T00:00:00.000Z',
});
const deployed = (id: string, model: string, deployment: string) => ({
  name: `accounts/me/deployedModels/${id}`,
  model,
  deployment,
  state: 'DEPLOYED' as const,
  createTime: '2026-11-30T00:00:00.000Z',
});

describe('DeploymentService.restore', () => {
  it('marks a deployment whose model is gone FAILED and drops the records that cannot load', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorasft-deprec-'));
    const store = openStore(dir);
    try {
      const records = new DeploymentRecords(store);
      expect(records.add(dep('old', 'accounts/me/models/gone'))).toBe(true);
      expect(records.add(dep('old', 'accounts/me/models/gone'))).toBe(false); // the name is taken
      records.addDeployed(deployed('ft-1', 'accounts/me/models/ft', 'accounts/me/deployments/old'));
      records.addDeployed(deployed('stray', 'accounts/me/models/ft', 'accounts/me/deployments/never'));
      const logs: string[] = [];
      const svc = new DeploymentService({ getModel: () => undefined }, { store, log: (m) => logs.push(m) });

      expect(await svc.restore()).toBe(1);
      expect(svc.get('me', 'old')).toMatchObject({
        state: 'FAILED',
        status: { code: 'NOT_FOUND', message: 'model accounts/me/models/gone no longer exists' },
      });
      expect(store.get('deployment', 'accounts/me/deployments/old')?.state).toBe('FAILED');
      expect(store.inStates('deployedModel', ['DEPLOYED'])).toEqual([]);
      await expect(svc.resolve('accounts/me/models/gone')).rejects.toMatchObject({
        httpStatus: 404,
        statusName: 'model_not_found',
      });

      await svc.delete('me', 'old');
      expect(store.get('deployment', 'accounts/me/deployments/old')).toBeUndefined();
      expect(await new DeploymentService({ getModel: () => undefined }, { store }).restore()).toBe(0);
    } finally {
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
