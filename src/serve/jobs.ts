// Supervised fine-tuning jobs: create (the request body as-is), get, list (newest first, filter on state),
// :cancel, :resume, delete. The job object is the one job.json holds (src/train/job.ts), with resource names
// where the trainer has paths; while a job runs, the queue copies its progress from job.json into the store.
import * as fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createJob } from '../train/job.ts';
import { alreadyExists, badRequest, conflict, notFound } from './errors.ts';
import { pageArgs, pageBody, queryParams, readJsonBody } from './http.ts';
import { requireId } from './ids.ts';
import { jobResourceName, resolveJobSpec, writeJobDir } from './jobspec.ts';
import type { Ctx, Route } from './routes.ts';
import { layout, type Service } from './service.ts';
import type { Json, Resource } from './store.ts';
import { ACTIVE_JOB_STATES } from './usage.ts';

const JOB_STATES = [
  'JOB_STATE_PENDING',
  'JOB_STATE_VALIDATING',
  'JOB_STATE_RUNNING',
  'JOB_STATE_CANCELLING',
  'JOB_STATE_COMPLETED',
  'JOB_STATE_EARLY_STOPPED',
  'JOB_STATE_FAILED',
  'JOB_STATE_CANCELLED',
];

function getJob(svc: Service, account: string, id: string): Resource {
  const r = svc.store.get('job', jobResourceName(account, id));
  if (!r) throw notFound(`job ${jobResourceName(account, id)} not found`);
  return r;
}

async function create(c: Ctx): Promise<Json> {
  const q = queryParams(c.query, ['supervisedFineTuningJobId']);
  const body = await readJsonBody(c.req);
  const id = q.supervisedFineTuningJobId
    ? requireId(q.supervisedFineTuningJobId, 'supervisedFineTuningJobId')
    : randomUUID();
  const name = jobResourceName(c.account, id);
  if (c.svc.store.get('job', name)) throw alreadyExists(`job ${name} already exists`);
  const spec = resolveJobSpec(c.svc, c.account, id, body);
  const job = createJob(spec.config) as Json;
  Object.assign(job, spec.echo, { name, state: 'JOB_STATE_PENDING', status: { code: 'OK', message: 'queued' } });
  for (const k of ['evaluationDataset', 'warmStartFrom', 'jinjaTemplate']) if (!(k in spec.echo)) job[k] = '';
  job.purpose ??= 'PURPOSE_UNSPECIFIED'; // the API's documented default
  const dir = layout.job(c.svc.opts.dataDir, c.account, id);
  fs.rmSync(dir, { recursive: true, force: true }); // a leftover of a job deleted while the server was down
  writeJobDir(spec, dir, body.jinjaTemplate as string | undefined);
  c.svc.store.insert({
    kind: 'job',
    name,
    account: c.account,
    state: 'JOB_STATE_PENDING',
    body: job,
    meta: { dir, uses: spec.uses, outputModel: spec.outputModel, notices: spec.notices, runs: 0 },
  });
  c.svc.queue.kick();
  return c.svc.store.get('job', name)!.body;
}

function get(c: Ctx): Json {
  queryParams(c.query, ['readMask']);
  return getJob(c.svc, c.account, c.id).body;
}

/** `filter`: `state = JOB_STATE_X` (or `!=`), several `=` joined by OR; quotes optional (AIP-160 subset). */
function parseStateFilter(filter: string): { states: string[]; exclude: boolean } {
  const clauses = filter.split(/\s+OR\s+/);
  const parsed = clauses.map((cl) => /^\s*state\s*(!=|=)\s*"?([A-Z_]+)"?\s*$/.exec(cl));
  const bad = parsed.findIndex((m) => !m || !JOB_STATES.includes(m[2]));
  if (bad !== -1)
    throw badRequest(
      `unsupported filter ${JSON.stringify(filter.slice(0, 120))}: use state = JOB_STATE_X (OR state = JOB_STATE_Y ...) or state != JOB_STATE_X, with X one of ${JOB_STATES.map((s) => s.slice(10)).join(', ')}`,
    );
  const ops = new Set(parsed.map((m) => m![1]));
  if (ops.has('!=') && parsed.length > 1) throw badRequest('unsupported filter: != takes a single clause');
  return { states: parsed.map((m) => m![2]), exclude: ops.has('!=') };
}

function list(c: Ctx): Json {
  const q = queryParams(c.query, ['pageSize', 'pageToken', 'filter', 'orderBy', 'readMask']);
  if (q.orderBy) throw badRequest('supervisedFineTuningJobs: orderBy is not supported (lists are newest first)');
  const f = q.filter ? parseStateFilter(q.filter) : {};
  return pageBody('supervisedFineTuningJobs', c.svc.store.list('job', { account: c.account, ...pageArgs(q), ...f }));
}

async function cancel(c: Ctx): Promise<Json> {
  queryParams(c.query, []);
  await readJsonBody(c.req);
  const r = getJob(c.svc, c.account, c.id);
  if (!ACTIVE_JOB_STATES.includes(r.state))
    throw conflict(`job ${r.name} is ${r.state}; only a queued or running job can be cancelled`);
  c.svc.queue.cancel(r.name);
  return c.svc.store.get('job', r.name)!.body;
}

async function resume(c: Ctx): Promise<Json> {
  queryParams(c.query, []);
  await readJsonBody(c.req);
  const r = getJob(c.svc, c.account, c.id);
  if (r.state !== 'JOB_STATE_CANCELLED' && r.state !== 'JOB_STATE_FAILED')
    throw conflict(`job ${r.name} is ${r.state}; only a cancelled or failed job can be resumed`);
  if (c.svc.store.get('model', r.meta.outputModel as string))
    throw alreadyExists(`job ${r.name}: its output model ${r.meta.outputModel} exists now; delete it first`);
  for (const input of (r.meta.uses as string[] | undefined) ?? []) {
    const kind = input.split('/')[2] === 'datasets' ? 'dataset' : 'model';
    const got = c.svc.store.get(kind, input);
    if (got?.state !== 'READY')
      throw badRequest(`job ${r.name}: its ${kind} ${input} ${got ? `is ${got.state}` : 'no longer exists'}`);
  }
  const body: Json = {
    ...r.body,
    state: 'JOB_STATE_PENDING',
    status: { code: 'OK', message: 'queued to resume from its last checkpoint' },
    updateTime: new Date().toISOString(),
  };
  delete body.completedTime;
  c.svc.store.update('job', r.name, { state: 'JOB_STATE_PENDING', body });
  c.svc.queue.kick();
  return c.svc.store.get('job', r.name)!.body;
}

async function remove(c: Ctx): Promise<Json> {
  queryParams(c.query, []);
  const r = getJob(c.svc, c.account, c.id);
  await c.svc.queue.stop(r.name); // a running job is cancelled first (its trainer checkpoints and exits)
  c.svc.store.delete('job', r.name);
  fs.rmSync(r.meta.dir as string, { recursive: true, force: true });
  return {};
}

export const JOB_ROUTES: Route[] = [
  { method: 'POST', collection: 'supervisedFineTuningJobs', item: false, handle: create },
  { method: 'GET', collection: 'supervisedFineTuningJobs', item: false, handle: list },
  { method: 'GET', collection: 'supervisedFineTuningJobs', item: true, handle: get },
  { method: 'DELETE', collection: 'supervisedFineTuningJobs', item: true, handle: remove },
  { method: 'POST', collection: 'supervisedFineTuningJobs', item: true, verb: 'cancel', handle: cancel },
  { method: 'POST', collection: 'supervisedFineTuningJobs', item: true, verb: 'resume', handle: resume },
];
