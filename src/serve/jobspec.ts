// A job request body -> the trainer's config: the same field checks as `train --config` (unknown fields rejected
// by name), then the resource names resolved to local files: dataset and evaluation dataset to their uploaded
// JSONL, base model / warm start to their dirs, the output model to a new model id. Missing inputs are a 400.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { configFromBody, resolveConfig, type TrainConfig } from '../train/config.ts';
import { IGNORED_FIELDS } from '../train/config_fields.ts';
import { MAX_EXAMPLE_EPOCHS } from '../data/validate.ts';
import { createChatTemplate } from '../data/template.ts';
import { alreadyExists, badRequest } from './errors.ts';
import { parseRef, resourceName, type ResourceRef } from './ids.ts';
import { layout, type Service } from './service.ts';
import type { Json, Resource } from './store.ts';
import { activeJobsWriting } from './usage.ts';

export interface JobSpec {
  /** The trainer's config, with local paths (written to the job dir, passed to `lorasft train --config`). */
  config: TrainConfig;
  /** Request fields as the API echoes them: resource names, not paths. */
  echo: Json;
  /** Resource names the job reads (a dataset or model in use cannot be deleted). */
  uses: string[];
  outputModel: string;
  notices: string[];
}

function userTo400<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UserError) throw badRequest(e.message);
    throw e;
  }
}

function readyDataset(svc: Service, ref: ResourceRef, field: string): { r: Resource; file: string } {
  const r = svc.store.get('dataset', ref.name);
  if (!r) throw badRequest(`${field}: dataset ${ref.name} does not exist`);
  if (r.state !== 'READY')
    throw badRequest(`${field}: dataset ${ref.name} is ${r.state}, not READY (upload its file first)`);
  return { r, file: layout.datasetFile(svc.opts.dataDir, ref.account, ref.id) };
}

function model(svc: Service, ref: ResourceRef, field: string, kind: string): Resource {
  const r = svc.store.get('model', ref.name);
  if (!r)
    throw badRequest(
      `${field}: model ${ref.name} does not exist (\`lorasft model list -a ${ref.account}\` shows that account's models)`,
    );
  if (r.body.kind !== kind)
    throw badRequest(
      `${field}: model ${ref.name} is a ${r.body.kind}; ${field} takes a ${kind}${kind === 'HF_BASE_MODEL' ? ' (continue a PEFT addon with warmStartFrom)' : ''}`,
    );
  if (r.state !== 'READY') throw badRequest(`${field}: model ${ref.name} is ${r.state}, not READY`);
  return r;
}

const given = (v: unknown) => v !== undefined && v !== null;

/** The request's fields without local meaning, as the job echoes them, null object members left out (a W&B API key is
 * neither stored nor shown). */
function ignoredEcho(body: Json): Json {
  const echo: Json = {};
  for (const k of Object.keys(IGNORED_FIELDS)) {
    const v = body[k];
    if (given(v))
      echo[k] = typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([, m]) => given(m))) : v;
  }
  if (echo.wandbConfig) {
    const { apiKey: _secret, ...shown } = echo.wandbConfig as Json;
    echo.wandbConfig = shown;
  }
  return echo;
}

/**
 * baseModel or warmStartFrom -> the base model's dir and the addon's ('' without one), echoed by name. A warm start
 * trains its addon at the addon's rank: that is the job's loraRank, and another one given is a 400.
 */
function resolveModels(
  svc: Service,
  account: string,
  given: Partial<TrainConfig>,
  echo: Json,
  uses: string[],
): { baseDir: string; warmDir: string } {
  if (!!given.baseModel === !!given.warmStartFrom)
    throw badRequest('request: give exactly one of baseModel or warmStartFrom');
  if (given.baseModel) {
    const ref = parseRef(given.baseModel, 'models', account, 'baseModel');
    echo.baseModel = ref.name;
    uses.push(ref.name);
    return { baseDir: model(svc, ref, 'baseModel', 'HF_BASE_MODEL').meta.dir as string, warmDir: '' };
  }
  const ref = parseRef(given.warmStartFrom!, 'models', account, 'warmStartFrom');
  const addon = model(svc, ref, 'warmStartFrom', 'HF_PEFT_ADDON');
  const peft = addon.body.peftDetails as { baseModel: string; r: number };
  const base = svc.store.get('model', peft.baseModel);
  if (!base) throw badRequest(`warmStartFrom: the base model of ${ref.name}, ${peft.baseModel}, no longer exists`);
  if (given.loraRank !== undefined && given.loraRank !== peft.r)
    throw badRequest(
      `loraRank: ${given.loraRank} is not the rank of warmStartFrom ${ref.name}, ${peft.r} (a warm start trains its addon at its own rank; leave loraRank out)`,
    );
  given.loraRank = peft.r;
  echo.warmStartFrom = ref.name;
  echo.baseModel = peft.baseModel;
  uses.push(ref.name, peft.baseModel);
  return { baseDir: base.meta.dir as string, warmDir: addon.meta.dir as string };
}

/** Checks a create request and resolves it for job `jobId` of `account`; 400 / 409 on any problem. */
export function resolveJobSpec(svc: Service, account: string, jobId: string, body: Json): JobSpec {
  const notices: string[] = [];
  const given = userTo400(() => configFromBody(body, 'request', (m) => notices.push(m)));
  if (given.jobId !== undefined)
    throw badRequest("request: set the job id with ?supervisedFineTuningJobId=ID, not a 'jobId' field");
  const echo = ignoredEcho(body);
  const uses: string[] = [];
  const jobDir = layout.job(svc.opts.dataDir, account, jobId);

  if (!given.dataset)
    throw badRequest('request: dataset is required (a dataset name, accounts/ACCOUNT/datasets/ID or ID)');
  const dsRef = parseRef(given.dataset, 'datasets', account, 'dataset');
  const ds = readyDataset(svc, dsRef, 'dataset');
  echo.dataset = dsRef.name;
  uses.push(dsRef.name);
  let evalFile = '';
  if (given.evaluationDataset) {
    const ref = parseRef(given.evaluationDataset, 'datasets', account, 'evaluationDataset');
    evalFile = readyDataset(svc, ref, 'evaluationDataset').file;
    echo.evaluationDataset = ref.name;
    uses.push(ref.name);
  }

  const { baseDir, warmDir } = resolveModels(svc, account, given, echo, uses);

  const out = parseRef(given.outputModel || jobId, 'models', account, 'outputModel');
  if (svc.store.get('model', out.name))
    throw alreadyExists(`outputModel: model ${out.name} already exists (choose another outputModel, or delete it)`);
  if (activeJobsWriting(svc.store, out.name).length)
    throw alreadyExists(`outputModel: model ${out.name} is the output of a queued or running job`);
  echo.outputModel = out.name;

  let template = '';
  if (given.jinjaTemplate) {
    if (!/\{\{|\{%/.test(given.jinjaTemplate))
      throw badRequest('jinjaTemplate must be the template text (containing {{ or {%); the server reads no file paths');
    userTo400(() => createChatTemplate(given.jinjaTemplate, {}, 'jinjaTemplate')); // one that does not parse: 400 now
    template = path.join(jobDir, 'template.jinja'); // the text, never read as a path on this machine
    echo.jinjaTemplate = given.jinjaTemplate;
  }
  const config = userTo400(() =>
    resolveConfig(given, {
      dataset: ds.file,
      evaluationDataset: evalFile,
      baseModel: baseDir,
      warmStartFrom: warmDir,
      jinjaTemplate: template,
      outputModel: path.join(jobDir, 'out'),
      jobId,
      threads: given.threads ?? svc.opts.threadsPerJob,
    }),
  );
  const examples = Number(ds.r.body.exampleCount);
  if (examples * config.epochs > MAX_EXAMPLE_EPOCHS)
    throw badRequest(
      `request: ${examples} examples x ${config.epochs} epochs exceeds the limit of ${MAX_EXAMPLE_EPOCHS}`,
    );
  return { config, echo, uses, outputModel: out.name, notices };
}

/** Writes the job dir: config.json (what `lorasft train --config` runs) and the chat template, if any. */
export function writeJobDir(spec: JobSpec, jobDir: string, jinjaTemplate: string | undefined): void {
  fs.mkdirSync(jobDir, { recursive: true });
  if (spec.config.jinjaTemplate) fs.writeFileSync(spec.config.jinjaTemplate, jinjaTemplate ?? '');
  fs.writeFileSync(path.join(jobDir, 'config.json'), JSON.stringify(spec.config, null, 2) + '\n');
}

export const jobResourceName = (account: string, id: string) => resourceName(account, 'supervisedFineTuningJobs', id);
