// Datasets: create a record, upload its JSONL (validated with exactly `lorasft validate`'s rules), get, list,
// delete. Body shapes follow the managed API's Dataset (exampleCount is an int64, so a string in JSON).
import * as fs from 'node:fs';
import { alreadyExists, badRequest, conflict, notFound } from './errors.ts';
import { pageArgs, pageBody, queryParams, readJsonBody, rejectUnknown } from './http.ts';
import { requireId, resourceName } from './ids.ts';
import type { Ctx, Route } from './routes.ts';
import { layout, type Service } from './service.ts';
import type { Json, Resource } from './store.ts';
import { receiveUpload } from './upload.ts';
import { getUploadEndpoint, validateUpload } from './bigupload.ts';
import { activeJobsUsing } from './usage.ts';

const DATASET_FIELDS = ['userUploaded', 'exampleCount', 'displayName', 'format'] as const;

function getDataset(svc: Service, account: string, id: string): Resource {
  const r = svc.store.get('dataset', resourceName(account, 'datasets', id));
  if (!r) throw notFound(`dataset ${resourceName(account, 'datasets', id)} not found`);
  return r;
}

function parseCount(v: unknown): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw badRequest(`dataset.exampleCount must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

async function create(c: Ctx): Promise<Json> {
  const body = await readJsonBody(c.req);
  queryParams(c.query, []);
  rejectUnknown(body, ['datasetId', 'dataset'], 'CreateDatasetRequest');
  const id = requireId(body.datasetId, 'datasetId');
  const d = (body.dataset ?? {}) as Json;
  if (typeof d !== 'object' || d === null || Array.isArray(d)) throw badRequest('dataset must be an object');
  rejectUnknown(d, DATASET_FIELDS, 'dataset');
  if (
    d.userUploaded !== undefined &&
    (typeof d.userUploaded !== 'object' || d.userUploaded === null || Array.isArray(d.userUploaded))
  )
    throw badRequest('dataset.userUploaded must be an object ({})');
  if (d.displayName !== undefined && (typeof d.displayName !== 'string' || d.displayName.length > 200))
    throw badRequest('dataset.displayName must be a string of at most 200 characters');
  if (d.format !== undefined && d.format !== 'CHAT')
    throw badRequest(`dataset.format must be "CHAT" (chat-format JSONL), got ${JSON.stringify(d.format)}`);
  const expected = d.exampleCount === undefined ? undefined : parseCount(d.exampleCount);
  const name = resourceName(c.account, 'datasets', id);
  const now = new Date().toISOString();
  const dataset: Json = {
    name,
    displayName: (d.displayName as string | undefined) ?? id,
    createTime: now,
    updateTime: now,
    state: 'UPLOADING',
    status: { code: 'OK', message: 'waiting for the file (POST .../datasets/ID:upload)' },
    exampleCount: expected === undefined ? '0' : String(expected),
    userUploaded: {},
    format: 'CHAT',
  };
  const ok = c.svc.store.insert({
    kind: 'dataset',
    name,
    account: c.account,
    state: 'UPLOADING',
    body: dataset,
    meta: { expectedCount: expected ?? null },
  });
  if (!ok) throw alreadyExists(`dataset ${name} already exists`);
  return dataset;
}

async function upload(c: Ctx): Promise<Json> {
  queryParams(c.query, []);
  const r = getDataset(c.svc, c.account, c.id);
  if (r.state === 'READY')
    throw conflict(`dataset ${r.name} already holds an uploaded file (delete it and create it again to replace it)`);
  if (c.svc.uploading.has(r.name)) throw conflict(`dataset ${r.name}: another upload is in progress`);
  c.svc.uploading.add(r.name);
  try {
    const dir = layout.dataset(c.svc.opts.dataDir, c.account, c.id);
    const { examples, bytes, filename } = await receiveUpload(
      c.req,
      dir,
      layout.datasetFile(c.svc.opts.dataDir, c.account, c.id),
      {
        maxBytes: c.svc.opts.maxUploadBytes,
        expectedCount: (r.meta.expectedCount as number | null) ?? undefined,
      },
    );
    const body = {
      ...r.body,
      state: 'READY',
      status: { code: 'OK', message: '' },
      exampleCount: String(examples),
      updateTime: new Date().toISOString(),
    };
    if (!c.svc.store.update('dataset', r.name, { state: 'READY', body, meta: { ...r.meta, bytes, filename } })) {
      fs.rmSync(dir, { recursive: true, force: true }); // deleted while uploading
      throw notFound(`dataset ${r.name} was deleted during the upload`);
    }
    return body;
  } finally {
    c.svc.uploading.delete(r.name);
    removeIfEmpty(layout.dataset(c.svc.opts.dataDir, c.account, c.id)); // a rejected file leaves no trace
  }
}

function removeIfEmpty(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    /* missing or not empty */
  }
}

function get(c: Ctx): Json {
  queryParams(c.query, ['readMask']);
  return getDataset(c.svc, c.account, c.id).body;
}

/** `accounts/-/datasets` lists the datasets of every account (AIP-159's wildcard): all a job can train on. */
function list(c: Ctx): Json {
  const q = queryParams(c.query, ['pageSize', 'pageToken', 'filter', 'orderBy', 'readMask']);
  if (q.filter) throw badRequest('datasets: filter is not supported');
  if (q.orderBy) throw badRequest('datasets: orderBy is not supported (lists are newest first)');
  const account = c.account === '-' ? undefined : c.account;
  return pageBody('datasets', c.svc.store.list('dataset', { account, ...pageArgs(q) }));
}

function remove(c: Ctx): Json {
  queryParams(c.query, []);
  const r = getDataset(c.svc, c.account, c.id);
  if (c.svc.uploading.has(r.name)) throw conflict(`dataset ${r.name}: an upload is in progress`);
  c.svc.store.transaction(() => {
    const users = activeJobsUsing(c.svc.store, r.name);
    if (users.length)
      throw conflict(
        `dataset ${r.name} is used by ${users.length} queued or running job(s): ${users.slice(0, 3).join(', ')}; cancel or delete them first`,
      );
    c.svc.store.delete('dataset', r.name);
  });
  fs.rmSync(layout.dataset(c.svc.opts.dataDir, c.account, c.id), { recursive: true, force: true });
  return {};
}

export const DATASET_ROUTES: Route[] = [
  { method: 'POST', collection: 'datasets', item: false, handle: create },
  { method: 'GET', collection: 'datasets', item: false, handle: list },
  { method: 'GET', collection: 'datasets', item: true, handle: get },
  { method: 'DELETE', collection: 'datasets', item: true, handle: remove },
  { method: 'POST', collection: 'datasets', item: true, verb: 'upload', handle: upload },
  { method: 'POST', collection: 'datasets', item: true, verb: 'getUploadEndpoint', handle: getUploadEndpoint },
  { method: 'POST', collection: 'datasets', item: true, verb: 'validateUpload', handle: validateUpload },
];
