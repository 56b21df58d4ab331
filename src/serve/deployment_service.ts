// Deployments held by this server process: each loads one base model once (in the background: CREATING, then
// READY or FAILED) and serves LoRA models loaded on it (DeployedModels, the managed API's "load LoRA"). Records
// follow the managed API's Deployment and DeployedModel; the weights live only as long as the process.
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { initBackend } from '../backend/index.ts';
import { Deployment } from '../infer/deployment.ts';
import type { ModelFiles, ModelRegistry } from '../infer/registry.ts';
import { alreadyExists, ApiError, badRequest, conflict, notFound } from './errors.ts';
import { type Json } from './store.ts';

const ID = /^[a-z0-9-]{1,63}$/;

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

interface Live {
  record: DeploymentRecord;
  /** The base model's files (the deployment's weights). */
  base: ModelFiles;
  ready: Promise<Deployment>;
  dep?: Deployment;
  /** Model names served -> adapter key on the Deployment (null: the base model itself). */
  served: Map<string, string | null>;
}

function checkId(id: unknown, what: string): string {
  if (typeof id !== 'string' || !ID.test(id))
    throw badRequest(
      `invalid ${what} ${JSON.stringify(typeof id === 'string' ? id.slice(0, 80) : id)}: use 1 to 63 lowercase letters, digits or hyphens`,
    );
  return id;
}

/** `accounts/A/COLLECTION/ID` from a full name or a bare id in `account`. */
function refName(value: unknown, collection: string, account: string, field: string): string {
  if (typeof value !== 'string' || value === '')
    throw badRequest(`${field} must be a name (accounts/ACCOUNT/${collection}/ID or ID), got ${JSON.stringify(value)}`);
  const p = value.split('/');
  if (p.length === 1) return `accounts/${account}/${collection}/${checkId(value, `${field} id`)}`;
  if (p.length !== 4 || p[0] !== 'accounts' || p[2] !== collection)
    throw badRequest(
      `${field}: ${JSON.stringify(value.slice(0, 120))} is not a name of the form accounts/ACCOUNT/${collection}/ID`,
    );
  return `accounts/${checkId(p[1], `${field} account id`)}/${collection}/${checkId(p[3], `${field} id`)}`;
}

const newId = () => randomBytes(4).toString('hex');

export class DeploymentService {
  private readonly live = new Map<string, Live>();
  private readonly deployed = new Map<string, DeployedModelRecord>();

  /** The tensor backend, chosen once, before the first deployment loads (the server itself trains nothing). */
  private backend?: Promise<unknown>;

  constructor(
    readonly registry: ModelRegistry,
    private readonly opts: { maxBatch?: number; backend?: string; threads?: number; log?: (m: string) => void } = {},
  ) {}

  private async model(name: string, field: string): Promise<ModelFiles> {
    const m = await this.registry.getModel(name);
    if (!m) throw badRequest(`${field}: model ${name} not found`);
    return m;
  }

  /** Starts loading `baseModel` (a base or a LoRA model); answers at once with state CREATING. */
  async create(account: string, id: string | undefined, body: Json): Promise<DeploymentRecord> {
    const depId = id === undefined ? newId() : checkId(id, 'deploymentId');
    const name = `accounts/${account}/deployments/${depId}`;
    const modelName = refName(body.baseModel, 'models', account, 'baseModel');
    if (body.displayName !== undefined && typeof body.displayName !== 'string')
      throw badRequest('displayName must be a string');
    if (body.enableAddons !== undefined && typeof body.enableAddons !== 'boolean')
      throw badRequest('enableAddons must be a boolean');
    const m = await this.model(modelName, 'baseModel');
    if (this.live.has(name)) throw alreadyExists(`deployment ${name} already exists`);
    const now = new Date().toISOString();
    const record: DeploymentRecord = {
      name,
      displayName: (body.displayName as string | undefined) ?? depId,
      baseModel: modelName,
      enableAddons: (body.enableAddons as boolean | undefined) ?? m.kind === 'HF_BASE_MODEL',
      state: 'CREATING',
      status: { code: 'OK', message: '' },
      createTime: now,
      updateTime: now,
    };
    const base = m.kind === 'HF_BASE_MODEL' ? m : await this.model(m.baseModel, 'baseModel (its base model)');
    const live: Live = { record, base, served: new Map(), ready: Promise.resolve(null as never) };
    live.ready = this.load(live, m);
    live.ready.catch(() => {}); // the state says FAILED; requests see the error
    this.live.set(name, live);
    return { ...record };
  }

  private async load(live: Live, m: ModelFiles): Promise<Deployment> {
    const set = (state: DeploymentRecord['state'], code = 'OK', message = '') =>
      Object.assign(live.record, { state, status: { code, message }, updateTime: new Date().toISOString() });
    try {
      await new Promise((r) => setImmediate(r)); // answer the create request first
      this.backend ??= initBackend({ backend: this.opts.backend, threads: this.opts.threads }).then((b) =>
        this.opts.log?.(`deployments: backend ${b.name} (${b.reason})`),
      );
      await this.backend;
      const dep = await Deployment.load(live.base.baseModelDir, { maxBatch: this.opts.maxBatch });
      if (live.record.state === 'DELETING') {
        await dep.close();
        throw new Error('deleted while loading');
      }
      live.dep = dep;
      if (m.kind === 'HF_BASE_MODEL') live.served.set(m.name, null);
      else this.attach(live, m);
      set('READY');
      return dep;
    } catch (e) {
      set('FAILED', 'INTERNAL', (e as Error).message);
      throw e;
    }
  }

  /** Loads a LoRA model's adapter on a live deployment and records the DeployedModel. */
  private attach(live: Live, m: ModelFiles): DeployedModelRecord {
    if (path.resolve(m.baseModelDir) !== path.resolve(live.base.baseModelDir)) {
      throw badRequest(
        `model ${m.name} is a LoRA on ${m.baseModel}; deployment ${live.record.name} serves ${live.base.name}`,
      );
    }
    live.dep!.loadLora(m.name, m.adapterDir!);
    live.served.set(m.name, m.name);
    const account = live.record.name.split('/')[1];
    const id = `${m.name.split('/').pop()!.slice(0, 54)}-${newId()}`;
    const rec: DeployedModelRecord = {
      name: `accounts/${account}/deployedModels/${id}`,
      model: m.name,
      deployment: live.record.name,
      state: 'DEPLOYED',
      createTime: new Date().toISOString(),
    };
    this.deployed.set(rec.name, rec);
    return rec;
  }

  private getLive(account: string, id: string): Live {
    const live = this.live.get(`accounts/${account}/deployments/${checkId(id, 'deployment id')}`);
    if (!live) throw notFound(`deployment accounts/${account}/deployments/${id} not found`);
    return live;
  }

  get(account: string, id: string): DeploymentRecord {
    return { ...this.getLive(account, id).record };
  }

  list(account: string): DeploymentRecord[] {
    return [...this.live.values()]
      .filter((l) => l.record.name.startsWith(`accounts/${account}/`))
      .map((l) => ({ ...l.record }));
  }

  /** Cancels its requests in flight, frees the weights and drops its DeployedModels. */
  async delete(account: string, id: string): Promise<void> {
    const live = this.getLive(account, id);
    live.record.state = 'DELETING';
    this.live.delete(live.record.name);
    for (const [n, d] of this.deployed) if (d.deployment === live.record.name) this.deployed.delete(n);
    if (live.dep) await live.dep.close();
  }

  /** The managed API's Load LoRA: `{model, deployment}`; waits for a CREATING deployment to be ready. */
  async loadLora(account: string, body: Json): Promise<DeployedModelRecord> {
    const modelName = refName(body.model, 'models', account, 'model');
    const depName = refName(body.deployment, 'deployments', account, 'deployment');
    const [, depAccount, , depId] = depName.split('/');
    const live = this.getLive(depAccount, depId);
    const m = await this.model(modelName, 'model');
    if (m.kind !== 'HF_PEFT_ADDON') throw badRequest(`model ${modelName} is a base model, not a LoRA addon`);
    if (live.served.has(modelName)) throw alreadyExists(`model ${modelName} is already loaded on ${depName}`);
    await this.ready(live);
    return this.attach(live, m);
  }

  /** Unload LoRA: removes the DeployedModel; requests in flight with it finish first. */
  unloadLora(account: string, id: string): void {
    const name = `accounts/${account}/deployedModels/${checkId(id, 'deployed model id')}`;
    const rec = this.deployed.get(name);
    if (!rec) throw notFound(`deployed model ${name} not found`);
    this.deployed.delete(name);
    const live = this.live.get(rec.deployment);
    if (!live) return;
    live.served.delete(rec.model);
    live.dep?.unloadLora(rec.model);
  }

  getDeployedModel(account: string, id: string): DeployedModelRecord {
    const rec = this.deployed.get(`accounts/${account}/deployedModels/${checkId(id, 'deployed model id')}`);
    if (!rec) throw notFound(`deployed model accounts/${account}/deployedModels/${id} not found`);
    return { ...rec };
  }

  listDeployedModels(account: string): DeployedModelRecord[] {
    return [...this.deployed.values()].filter((d) => d.name.startsWith(`accounts/${account}/`)).map((d) => ({ ...d }));
  }

  /** The loaded Deployment; 409 when loading failed. */
  private async ready(live: Live): Promise<Deployment> {
    try {
      return await live.ready;
    } catch {
      throw conflict(`deployment ${live.record.name} failed to load: ${live.record.status.message}`);
    }
  }

  /**
   * The deployment and adapter that serve `model`: `MODEL` (any deployment serving it, the least busy) or
   * `MODEL#accounts/A/deployments/ID`. 404 model_not_found / model_not_deployed otherwise.
   */
  async resolve(
    model: string,
  ): Promise<{ dep: Deployment; adapter: string | null; model: string; deployment: string }> {
    const hash = model.lastIndexOf('#');
    const modelName = hash < 0 ? model : model.slice(0, hash);
    const depName = hash < 0 ? undefined : model.slice(hash + 1);
    const candidates = [...this.live.values()].filter(
      (l) => l.served.has(modelName) || (l.record.state === 'CREATING' && l.record.baseModel === modelName),
    );
    const pick =
      depName === undefined
        ? candidates
        : candidates.filter((l) => l.record.name === depName || l.record.name.endsWith(`/deployments/${depName}`));
    if (pick.length === 0) {
      if (
        depName !== undefined &&
        ![...this.live.keys()].some((n) => n === depName || n.endsWith(`/deployments/${depName}`))
      )
        throw new ApiError(404, `The deployment \`${depName}\` does not exist.`, 'deployment_not_found');
      if (!(await this.registry.getModel(modelName)))
        throw new ApiError(404, `The model \`${modelName}\` does not exist.`, 'model_not_found');
      throw new ApiError(
        404,
        `The model \`${modelName}\` is not deployed${depName ? ` on ${depName}` : ''}; create a deployment for it (POST /v1/accounts/ACCOUNT/deployments) or load it on one (POST /v1/accounts/ACCOUNT/deployedModels).`,
        'model_not_deployed',
      );
    }
    const live = pick.sort((a, b) => (a.dep?.engine.inFlight ?? 0) - (b.dep?.engine.inFlight ?? 0))[0];
    const dep = await this.ready(live);
    return { dep, adapter: live.served.get(modelName) ?? null, model: modelName, deployment: live.record.name };
  }

  /** Every model some deployment serves, with the deployments serving it. */
  served(): Array<{ model: string; deployment: string; createTime: string }> {
    return [...this.live.values()].flatMap((l) =>
      [...l.served.keys()].map((model) => ({ model, deployment: l.record.name, createTime: l.record.createTime })),
    );
  }

  async close(): Promise<void> {
    for (const l of [...this.live.values()])
      await this.delete(l.record.name.split('/')[1], l.record.name.split('/')[3]);
  }
}
