// The stored side of the DeploymentService: Deployment and DeployedModel records (the managed API's shapes) as rows
// of the service's store, so that a restarted server loads them again. Without a store every call does nothing.
import type { Store } from './store.ts';

export interface DeploymentRecord {
  name: string;
  displayName: string;
  /** The model it was created for: a base model, or a LoRA model on its base (single-LoRA deployment). */
  baseModel: string;
  enableAddons: boolean;
  state: 'CREATING' | 'READY' | 'FAILED' | 'DELETING';
  status: { code: string; message: string };
  createTime: string;
  updateTime: string;
}

export interface DeployedModelRecord {
  name: string;
  model: string;
  deployment: string;
  state: 'DEPLOYED';
  createTime: string;
}

const account = (name: string) => name.split('/')[1];

export class DeploymentRecords {
  constructor(private readonly store?: Store) {}

  /** Adds a new deployment's record; false when the name is taken. */
  add(rec: DeploymentRecord): boolean {
    return this.insert('deployment', rec);
  }

  save(rec: DeploymentRecord): void {
    this.store?.update('deployment', rec.name, { state: rec.state, body: { ...rec } });
  }

  addDeployed(rec: DeployedModelRecord): void {
    this.insert('deployedModel', rec);
  }

  private insert(kind: 'deployment' | 'deployedModel', rec: DeploymentRecord | DeployedModelRecord): boolean {
    const row = { kind, name: rec.name, account: account(rec.name), state: rec.state, body: { ...rec }, meta: {} };
    return this.store?.insert(row) ?? true;
  }

  dropDeployed(name: string): void {
    this.store?.delete('deployedModel', name);
  }

  /** Removes a deployment's record and those of its DeployedModels (also the ones not loaded again). */
  forget(name: string): void {
    const store = this.store;
    store?.transaction(() => {
      store.delete('deployment', name);
      for (const d of this.deployedModels()) if (d.deployment === name) store.delete('deployedModel', d.name);
    });
  }

  /** Every stored deployment, oldest first, with its DeployedModels; DeployedModels of no deployment are removed. */
  all(): Array<{ record: DeploymentRecord; deployed: DeployedModelRecord[] }> {
    if (!this.store) return [];
    const records = this.store
      .inStates('deployment', ['CREATING', 'READY', 'FAILED', 'DELETING'])
      .map((r) => r.body as unknown as DeploymentRecord);
    const deployed = this.deployedModels();
    const names = new Set(records.map((r) => r.name));
    for (const d of deployed) if (!names.has(d.deployment)) this.dropDeployed(d.name);
    return records.map((record) => ({ record, deployed: deployed.filter((d) => d.deployment === record.name) }));
  }

  private deployedModels(): DeployedModelRecord[] {
    return (this.store?.inStates('deployedModel', ['DEPLOYED']) ?? []).map(
      (r) => r.body as unknown as DeployedModelRecord,
    );
  }
}
