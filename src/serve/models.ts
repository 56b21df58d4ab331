// Models: base models are local Hugging Face dirs registered by name (`lorasft model import`, the demo model on
// first start); a completed job registers its output model (kind HF_PEFT_ADDON) with the adapter files copied into
// the data dir. get, list, delete, and :getDownloadEndpoint, which hands out signed URLs served by this server.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelConfig } from '../model/config.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../model/peft.ts';
import { requireModelDir } from '../util/paths.ts';
import { readJsonObject } from '../util/files.ts';
import { badRequest, conflict, notFound } from './errors.ts';
import { pageArgs, pageBody, queryParams } from './http.ts';
import { parseRef, resourceName } from './ids.ts';
import type { Ctx, Route } from './routes.ts';
import { layout, type Service } from './service.ts';
import type { Json, Resource, Store } from './store.ts';
import { signedUrl } from './download.ts';
import { activeJobsUsing, deploymentsUsing } from './usage.ts';
import { outDir } from './worker.ts';

/** The files of a PEFT addon model, the ones its download endpoint hands out. */
export const ADDON_FILES = [ADAPTER_CONFIG, ADAPTER_WEIGHTS];

function getModel(svc: Service, account: string, id: string): Resource {
  const r = svc.store.get('model', resourceName(account, 'models', id));
  if (!r) throw notFound(`model ${resourceName(account, 'models', id)} not found`);
  return r;
}

/**
 * Registers the local HF model dir `dir` as base model `name` (accounts/A/models/ID or ID in account `local`).
 * Throws a UserError for a dir that is not a model; false when the name is taken.
 */
export function importBaseModel(
  store: Store,
  nameOrId: string,
  dir: string,
  displayName?: string,
): { ok: boolean; name: string } {
  const ref = parseRef(nameOrId, 'models', 'local', 'model name');
  const abs = path.resolve(dir);
  requireModelDir(abs, 'model import');
  const cfg = loadModelConfig(abs);
  const now = new Date().toISOString();
  const body: Json = {
    name: ref.name,
    displayName: displayName ?? ref.id,
    description: `local Hugging Face model dir ${abs}`,
    createTime: now,
    updateTime: now,
    state: 'READY',
    status: { code: 'OK', message: '' },
    kind: 'HF_BASE_MODEL',
    contextLength: cfg.maxPositionEmbeddings,
    tunable: true,
    supportsLora: true,
    baseModelDetails: { checkpointFormat: 'HUGGINGFACE', modelType: cfg.modelType, tunable: true },
  };
  const ok = store.insert({
    kind: 'model',
    name: ref.name,
    account: ref.account,
    state: 'READY',
    body,
    meta: { dir: abs, imported: true },
  });
  return { ok, name: ref.name };
}

/** After job `job` completed: copy its adapter into the data dir and register its output model; an error message or null. */
export function registerOutputModel(svc: Service, job: Resource): string | null {
  const name = job.meta.outputModel as string;
  const ref = parseRef(name, 'models', job.account, 'outputModel');
  const existing = svc.store.get('model', name);
  if (existing)
    return existing.meta.job === job.name
      ? null
      : `output model ${name} was created by someone else while the job ran; resume the job after deleting it`;
  const src = outDir(job.meta.dir as string);
  const dest = layout.model(svc.opts.dataDir, ref.account, ref.id);
  const tmp = `${dest}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  for (const f of ADDON_FILES) fs.copyFileSync(path.join(src, f), path.join(tmp, f));
  fs.rmSync(dest, { recursive: true, force: true });
  fs.renameSync(tmp, dest);
  const ac = readJsonObject(path.join(dest, ADAPTER_CONFIG));
  const now = new Date().toISOString();
  const body: Json = {
    name,
    displayName: ref.id,
    description: `LoRA adapter trained by ${job.name}`,
    createTime: now,
    updateTime: now,
    state: 'READY',
    status: { code: 'OK', message: '' },
    kind: 'HF_PEFT_ADDON',
    fineTuningJob: job.name,
    tunable: true,
    peftDetails: { baseModel: job.body.baseModel, r: ac.r, loraAlpha: ac.lora_alpha, targetModules: ac.target_modules },
  };
  svc.store.insert({
    kind: 'model',
    name,
    account: ref.account,
    state: 'READY',
    body,
    meta: { dir: dest, job: job.name },
  });
  return null;
}

function get(c: Ctx): Json {
  queryParams(c.query, ['readMask']);
  return getModel(c.svc, c.account, c.id).body;
}

/** `accounts/-/models` lists the models of every account (AIP-159's wildcard): all a job can train from. */
function list(c: Ctx): Json {
  const q = queryParams(c.query, ['pageSize', 'pageToken', 'filter', 'orderBy', 'readMask']);
  if (q.filter || q.orderBy) throw badRequest('models: filter and orderBy are not supported (lists are newest first)');
  const account = c.account === '-' ? undefined : c.account;
  return pageBody('models', c.svc.store.list('model', { account, ...pageArgs(q) }));
}

function remove(c: Ctx): Json {
  queryParams(c.query, []);
  const r = getModel(c.svc, c.account, c.id);
  c.svc.store.transaction(() => {
    const users = activeJobsUsing(c.svc.store, r.name);
    if (users.length)
      throw conflict(
        `model ${r.name} is used by ${users.length} queued or running job(s): ${users.slice(0, 3).join(', ')}`,
      );
    const serving = deploymentsUsing(c.svc.store, r.name);
    if (serving.length)
      throw conflict(
        `model ${r.name} is served by ${serving.length} deployment(s): ${serving.slice(0, 3).join(', ')} (delete them first)`,
      );
    c.svc.store.delete('model', r.name);
  });
  // An imported base model is the user's own dir: only its record goes. An addon's copy lives in the data dir.
  if (!r.meta.imported) fs.rmSync(r.meta.dir as string, { recursive: true, force: true });
  return {};
}

function downloadEndpoint(c: Ctx): Json {
  const q = queryParams(c.query, ['readMask']);
  void q;
  const r = getModel(c.svc, c.account, c.id);
  if (r.body.kind !== 'HF_PEFT_ADDON')
    throw badRequest(
      `model ${r.name} is a ${r.body.kind}, a local dir on this machine; only PEFT addons are downloaded`,
    );
  const base = `http://${c.req.headers.host ?? c.svc.baseUrl.slice('http://'.length)}`;
  const urls: Record<string, string> = {};
  for (const f of ADDON_FILES) urls[f] = signedUrl(c.svc.secret, base, r.name, f);
  return { filenameToSignedUrls: urls };
}

export const MODEL_ROUTES: Route[] = [
  { method: 'GET', collection: 'models', item: false, handle: list },
  { method: 'GET', collection: 'models', item: true, handle: get },
  { method: 'DELETE', collection: 'models', item: true, handle: remove },
  { method: 'GET', collection: 'models', item: true, verb: 'getDownloadEndpoint', handle: downloadEndpoint },
];
