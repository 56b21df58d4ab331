// The server's deployments: each loads one base model once, in an inference process of its own (hosted.ts; in the
// background: CREATING, then READY or FAILED), and serves LoRA models loaded on it (DeployedModels, the managed
// API's "load LoRA"). Records follow the managed API's Deployment and DeployedModel. With a store (lorasft serve),
// they outlive the server: a restarted server loads each deployment and its LoRA models again (restore).
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { exited, HostedDeployment, isExited } from '../infer/hosted.ts';
import type { ModelFiles, ModelRegistry } from '../infer/registry.ts';
import {
  alreadyExists,
  badRequest,
  conflict,
  deploymentNotFound,
  modelNotDeployed,
  modelNotFound,
  notFound,
} from './errors.ts';
import { parseRef, requireId } from './ids.ts';
import { type DeployedModelRecord, DeploymentRecords, type DeploymentRecord } from './deployment_records.ts';
import { type Json, type Store } from './store.ts';

// Times in a row a deployment's process is started again after it ended on its own (then it is FAILED); the count
// starts over once it has been READY for RESTART_WINDOW_MS (a process that dies once a day is not given up on).
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 10 * 60_000;

interface Live {
  record: DeploymentRecord;
  /** The model it was created for and its base model's files; none when a restored deployment's model is gone. */
  model?: ModelFiles;
  base?: ModelFiles;
  ready: Promise<HostedDeployment>;
  dep?: HostedDeployment;
  /** Model names served -> adapter key on the Deployment (null: the base model itself). */
  served: Map<string, string | null>;
  /** LoRA models being loaded on it (while a restored deployment loads: those it served before). */
  loading: Set<string>;
  /** Times its process was started again (since it was READY for the restart window), and when it last became READY. */
  restarts: number;
  readyAt: number;
}

const newId = () => randomBytes(4).toString('hex');

export class DeploymentService {
  private readonly live = new Map<string, Live>();
  private readonly deployed = new Map<string, DeployedModelRecord>();

  /** Set by close(): the weights go, the stored records stay. */
  private closing = false;

  private readonly records: DeploymentRecords;

  constructor(
    readonly registry: ModelRegistry,
    private readonly opts: {
      maxBatch?: number;
      backend?: string;
      threads?: number;
      log?: (m: string) => void;
      /** Where the records are kept across restarts (none: they live as long as the process). */
      store?: Store;
      /** READY this long in one stretch, a deployment's restart count starts over (default 10 minutes). */
      restartWindowMs?: number;
    } = {},
  ) {
    this.records = new DeploymentRecords(opts.store);
  }

  /** The record as stored (its state and body); not while closing. */
  private save(rec: DeploymentRecord): void {
    if (!this.closing) this.records.save(rec);
  }

  private async model(name: string, field: string): Promise<ModelFiles> {
    const m = await this.registry.getModel(name);
    if (!m) throw badRequest(`${field}: model ${name} not found`);
    return m;
  }

  /** Starts loading `baseModel` (a base or a LoRA model); answers at once with state CREATING. */
  async create(account: string, id: string | undefined, body: Json): Promise<DeploymentRecord> {
    const depId = id === undefined ? newId() : requireId(id, 'deploymentId');
    const name = `accounts/${account}/deployments/${depId}`;
    const modelName = parseRef(body.baseModel, 'models', account, 'baseModel').name;
    if (body.displayName !== undefined && typeof body.displayName !== 'string')
      throw badRequest('displayName must be a string');
    if (body.enableAddons !== undefined && typeof body.enableAddons !== 'boolean')
      throw badRequest('enableAddons must be a boolean');
    const m = await this.model(modelName, 'baseModel');
    const base = m.kind === 'HF_BASE_MODEL' ? m : await this.model(m.baseModel, 'baseModel (its base model)');
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
    if (this.live.has(name) || !this.records.add(record)) throw alreadyExists(`deployment ${name} already exists`);
    this.start(record, m, base);
    return { ...record };
  }

  /** Loads the deployment in the background (`prior`: its DeployedModels as stored, loaded again). */
  private start(record: DeploymentRecord, m: ModelFiles, base: ModelFiles, prior: DeployedModelRecord[] = []): void {
    this.launch(this.add(record, m, base), prior);
  }

  /** A deployment held by this server (`m`, `base`: its model and base model's files, none when gone). */
  private add(record: DeploymentRecord, m?: ModelFiles, base?: ModelFiles): Live {
    const fresh = { served: new Map(), loading: new Set<string>(), restarts: 0, readyAt: 0 };
    const live: Live = { record, model: m, base, ...fresh, ready: null! };
    this.live.set(record.name, live);
    return live;
  }

  /** Loads the deployment (again) in the background, with the DeployedModels `prior` (requests for them wait). */
  private launch(live: Live, prior: DeployedModelRecord[]): void {
    live.loading = new Set(prior.map((d) => d.model));
    for (const d of prior) this.deployed.set(d.name, d); // listed, and unloadable, while it loads
    live.ready = this.load(live, prior);
    live.ready.catch(() => {}); // the state says FAILED; requests see the error
  }

  /** Sets the deployment's state and status, in its stored record too. */
  private setState(live: Live, state: DeploymentRecord['state'], code = 'OK', message = ''): void {
    Object.assign(live.record, { state, status: { code, message }, updateTime: new Date().toISOString() });
    this.save(live.record);
  }

  /** FAILED for good: requests for the models it serves get `message` in a 409. */
  private fail(live: Live, code: string, message: string): void {
    this.setState(live, 'FAILED', code, message);
    live.ready = Promise.reject(new Error(message));
    live.ready.catch(() => {});
  }

  /**
   * At start-up: every stored deployment loads again (CREATING, then READY or FAILED), with the LoRA models that
   * were loaded on it, under the same names. A deployment whose model is gone is FAILED (NOT_FOUND), and a
   * DeployedModel whose model is gone is dropped. Returns how many deployments were found.
   */
  async restore(): Promise<number> {
    const stored = this.records.all();
    for (const { record, deployed: mine } of stored) {
      Object.assign(record, { state: 'CREATING', status: { code: 'OK', message: '' } });
      const m = await this.registry.getModel(record.baseModel);
      const base = m && (m.kind === 'HF_BASE_MODEL' ? m : await this.registry.getModel(m.baseModel));
      if (m && base) {
        this.start(record, m, base, mine);
        continue;
      }
      this.fail(this.add(record), 'NOT_FOUND', `model ${m ? m.baseModel : record.baseModel} no longer exists`);
      for (const d of mine) this.records.dropDeployed(d.name);
    }
    return stored.length;
  }

  private async load(live: Live, prior: DeployedModelRecord[]): Promise<HostedDeployment> {
    const [m, base] = [live.model!, live.base!];
    try {
      const { maxBatch, backend, threads } = this.opts;
      const started = await HostedDeployment.start({ baseDir: base.baseModelDir, maxBatch, backend, threads }, (why) =>
        this.lost(live, why),
      );
      const dep = (live.dep = started.dep);
      if (live.record.state === 'DELETING') throw new Error('deleted while loading');
      this.opts.log?.(
        `deployments: ${live.record.name} serves ${base.name} (backend ${started.backend}; pid ${dep.pid})`,
      );
      const own = prior.find((d) => d.model === m.name); // a single-LoRA deployment's own DeployedModel
      const kept = (d: DeployedModelRecord) => this.deployed.has(d.name); // not unloaded while this loads
      if (m.kind === 'HF_BASE_MODEL') live.served.set(m.name, null);
      else if (!own || kept(own)) await this.attach(live, m, own);
      for (const d of prior) if (!live.served.has(d.model) && kept(d)) await this.reattach(live, d);
      if (dep.exitReason) throw exited(dep.exitReason); // ended after its last answer: lost() left it to us
      this.setState(live, 'READY');
      live.readyAt = Date.now();
      return dep;
    } catch (e) {
      await live.dep?.close();
      live.dep = undefined;
      if (isExited(e) && live.record.state === 'CREATING' && !this.closing) {
        this.again(live, (e as Error).message);
        return live.ready; // the next load's outcome
      }
      this.setState(live, 'FAILED', 'INTERNAL', (e as Error).message);
      throw e;
    }
  }

  /** A READY deployment's process ended on its own (killed, out of memory): started again (again()). */
  private lost(live: Live, why: string): void {
    live.dep = undefined;
    if (live.record.state !== 'READY') return; // while loading: load() sees the error
    if (Date.now() - live.readyAt >= (this.opts.restartWindowMs ?? RESTART_WINDOW_MS)) live.restarts = 0;
    this.again(live, why);
  }

  /**
   * Its process ended on its own, READY or loading: started again with its LoRA models, up to MAX_RESTARTS times in
   * a row (CREATING meanwhile: requests wait); then FAILED, and its requests answered 409.
   */
  private again(live: Live, why: string): void {
    const retry = live.restarts < MAX_RESTARTS;
    const message = retry
      ? `${why}; started again (${++live.restarts} of ${MAX_RESTARTS})`
      : `${why}; not started again after ${MAX_RESTARTS} restarts`;
    this.opts.log?.(`deployments: ${live.record.name}: ${message}`);
    if (!retry) return this.fail(live, 'INTERNAL', message); // its models stay listed: their requests get this 409
    this.setState(live, 'CREATING', 'OK', message);
    live.served.clear(); // load() serves them again
    const mine = [...this.deployed.values()].filter((d) => d.deployment === live.record.name);
    this.launch(live, mine);
  }

  /**
   * Loads a LoRA model's adapter on a live deployment and records the DeployedModel (`prior`: its stored record,
   * when a restored deployment loads it again).
   */
  private async attach(live: Live, m: ModelFiles, prior?: DeployedModelRecord): Promise<DeployedModelRecord> {
    const base = live.base!;
    if (path.resolve(m.baseModelDir) !== path.resolve(base.baseModelDir)) {
      throw badRequest(
        `model ${m.name} is a LoRA on ${m.baseModel}; deployment ${live.record.name} serves ${base.name}`,
      );
    }
    live.loading.add(m.name);
    try {
      await live.dep!.loadLora(m.name, m.adapterDir!);
    } finally {
      live.loading.delete(m.name);
    }
    if (prior && !this.deployed.has(prior.name)) {
      await live.dep!.unloadLora(m.name); // unloaded while it loaded again
      return prior;
    }
    live.served.set(m.name, m.name);
    const account = live.record.name.split('/')[1];
    const id = `${m.name.split('/').pop()!.slice(0, 54)}-${newId()}`;
    const rec: DeployedModelRecord = prior ?? {
      name: `accounts/${account}/deployedModels/${id}`,
      model: m.name,
      deployment: live.record.name,
      state: 'DEPLOYED',
      createTime: new Date().toISOString(),
    };
    this.deployed.set(rec.name, rec);
    if (!prior) this.records.addDeployed(rec);
    return rec;
  }

  /** A stored DeployedModel loaded again on its restored deployment; dropped (and logged) when that fails. */
  private async reattach(live: Live, d: DeployedModelRecord): Promise<void> {
    try {
      const m = await this.registry.getModel(d.model);
      if (!m) throw new Error(`model ${d.model} no longer exists`);
      await this.attach(live, m, d);
    } catch (e) {
      if (isExited(e)) throw e; // its process ended: load() starts it again, this model with it
      live.loading.delete(d.model);
      this.deployed.delete(d.name);
      this.records.dropDeployed(d.name);
      this.opts.log?.(`deployments: ${d.name} not loaded again on ${live.record.name}: ${(e as Error).message}`);
    }
  }

  private getLive(account: string, id: string): Live {
    const live = this.live.get(`accounts/${account}/deployments/${requireId(id, 'deployment id')}`);
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

  /** Cancels its requests in flight, frees the weights and drops its DeployedModels (and their stored records). */
  async delete(account: string, id: string): Promise<void> {
    const live = this.getLive(account, id);
    live.record.state = 'DELETING';
    this.live.delete(live.record.name);
    for (const [n, d] of this.deployed) if (d.deployment === live.record.name) this.deployed.delete(n);
    this.records.forget(live.record.name);
    if (live.dep) await live.dep.close();
  }

  /** The managed API's Load LoRA: `{model, deployment}`; waits for a CREATING deployment to be ready. */
  async loadLora(account: string, body: Json): Promise<DeployedModelRecord> {
    const modelName = parseRef(body.model, 'models', account, 'model').name;
    const depName = parseRef(body.deployment, 'deployments', account, 'deployment').name;
    const [, depAccount, , depId] = depName.split('/');
    const live = this.getLive(depAccount, depId);
    const m = await this.model(modelName, 'model');
    if (m.kind !== 'HF_PEFT_ADDON') throw badRequest(`model ${modelName} is a base model, not a LoRA addon`);
    if (!live.record.enableAddons)
      throw badRequest(`deployment ${depName} has enableAddons false: it serves no addons`);
    const loaded = () => live.served.has(modelName) || live.loading.has(modelName);
    if (loaded()) throw alreadyExists(`model ${modelName} is already loaded on ${depName}`);
    await this.ready(live);
    if (loaded()) throw alreadyExists(`model ${modelName} is already loaded on ${depName}`); // by a request meanwhile
    return this.attach(live, m);
  }

  /**
   * Unload LoRA: removes the DeployedModel; requests in flight with it finish first. One that a restored deployment
   * is still loading again is not loaded (its requests then get 404).
   */
  async unloadLora(account: string, id: string): Promise<void> {
    const name = `accounts/${account}/deployedModels/${requireId(id, 'deployed model id')}`;
    const rec = this.deployed.get(name);
    if (!rec) throw notFound(`deployed model ${name} not found`);
    this.deployed.delete(name);
    this.records.dropDeployed(name);
    const live = this.live.get(rec.deployment);
    if (!live) return;
    live.served.delete(rec.model);
    live.loading.delete(rec.model);
    await live.dep?.unloadLora(rec.model);
  }

  getDeployedModel(account: string, id: string): DeployedModelRecord {
    const rec = this.deployed.get(`accounts/${account}/deployedModels/${requireId(id, 'deployed model id')}`);
    if (!rec) throw notFound(`deployed model accounts/${account}/deployedModels/${id} not found`);
    return { ...rec };
  }

  listDeployedModels(account: string): DeployedModelRecord[] {
    return [...this.deployed.values()].filter((d) => d.name.startsWith(`accounts/${account}/`)).map((d) => ({ ...d }));
  }

  /** The loaded deployment; 409 when loading failed or its process ended. */
  private async ready(live: Live): Promise<HostedDeployment> {
    try {
      return await live.ready;
    } catch {
      throw conflict(`deployment ${live.record.name} is FAILED: ${live.record.status.message}`);
    }
  }

  /**
   * The deployment and adapter that serve `model`: `MODEL` (any deployment serving it, the least busy) or
   * `MODEL#accounts/A/deployments/ID`. 404 model_not_found / model_not_deployed otherwise.
   */
  async resolve(
    model: string,
  ): Promise<{ dep: HostedDeployment; adapter: string | null; model: string; deployment: string }> {
    const hash = model.lastIndexOf('#');
    const modelName = hash < 0 ? model : model.slice(0, hash);
    const depName = hash < 0 ? undefined : model.slice(hash + 1);
    const candidates = [...this.live.values()].filter(
      (l) =>
        l.served.has(modelName) ||
        (l.record.state === 'CREATING' && (l.record.baseModel === modelName || l.loading.has(modelName))),
    );
    const named = (n: string) => n === depName || n.endsWith(`/deployments/${depName}`); // full name or id
    const pick = depName === undefined ? candidates : candidates.filter((l) => named(l.record.name));
    if (pick.length === 0) {
      if (depName !== undefined && ![...this.live.keys()].some(named)) throw deploymentNotFound(depName);
      if (!(await this.registry.getModel(modelName))) throw modelNotFound(modelName);
      throw modelNotDeployed(modelName, depName, true);
    }
    const live = pick.sort((a, b) => (a.dep?.inFlight ?? 0) - (b.dep?.inFlight ?? 0))[0];
    const dep = await this.ready(live);
    // a restored LoRA model that failed to load again, or was unloaded while it loaded
    if (!live.served.has(modelName)) throw modelNotDeployed(modelName, live.record.name);
    return { dep, adapter: live.served.get(modelName) ?? null, model: modelName, deployment: live.record.name };
  }

  /** Every model some deployment serves, with the deployments serving it. */
  served(): Array<{ model: string; deployment: string; createTime: string }> {
    return [...this.live.values()].flatMap((l) =>
      [...l.served.keys()].map((model) => ({ model, deployment: l.record.name, createTime: l.record.createTime })),
    );
  }

  /** Frees every deployment's weights (a load in progress stops at its end); the stored records stay. */
  async close(): Promise<void> {
    this.closing = true;
    const all = [...this.live.values()];
    this.live.clear();
    this.deployed.clear();
    for (const l of all) {
      l.record.state = 'DELETING';
      if (l.dep) await l.dep.close();
    }
  }
}
