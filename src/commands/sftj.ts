// `lorasft sftj create|get|list|cancel|resume|delete`: supervised fine-tuning jobs on a lorasft serve, with
// firectl's flags (train's flags: --base-model, --dataset, --output-model, --epochs, --learning-rate, ...).
import * as fs from 'node:fs';
import { refPath } from '../client/api.ts';
import { UserError } from '../errors.ts';
import { needArgs, PAGE_FLAGS, pageQuery, parseVerb, printOne, printPage, runNoun } from '../client/verbs.ts';
import {
  configFlagOptions,
  configFromFlags,
  fieldSource,
  flagName,
  readConfigFile,
  resolveConfig,
} from '../train/config.ts';
import { isValidId } from '../serve/ids.ts';
import { shellQuote } from '../util/invocation.ts';
import { createChatTemplate, readTemplateOverride } from '../data/template.ts';

const HELP = `usage: lorasft sftj create (--base-model M | --warm-start-from M) --dataset D [--output-model O] [--job-id ID] [--config JOB.json] [train's flags] [--wandb-entity E --wandb-project P --wandb-api-key K]
       lorasft sftj get ID
       lorasft sftj list [--filter 'state=JOB_STATE_RUNNING'] [--page-size N] [--page-token T]
       lorasft sftj cancel ID | resume ID | delete ID

Talks to the lorasft serve at LORASFT_API_BASE (default http://127.0.0.1:8080) with LORASFT_API_KEY.
Models and datasets are resource names (accounts/fireworks/models/qwen3-0p6b) or ids in your account; the
output model defaults to the job id. 'lorasft train --help' lists the training flags (--epochs, --lora-rank, ...);
--config JOB.json is a request body (flags override its fields); --jinja-template FILE is read here and its text
sent (the server reads no paths). --wandb-entity/--wandb-project/--wandb-api-key (firectl's W&B flags) are
accepted and ignored with a notice: metrics go to the job's metrics.jsonl and the dashboard; the key is not kept.
Common flags: -a/--account ACCOUNT (default local), --json (or -o json).`;

async function create(argv: string[]): Promise<number> {
  const p = parseVerb('sftj create', argv, { ...configFlagOptions(), ...WANDB_FLAGS, config: { type: 'string' } });
  needArgs('sftj create', p.args, []);
  const file = typeof p.values.config === 'string' ? readConfigFile(p.values.config, notice) : {};
  const flags = configFromFlags(p.values);
  resolveConfig(file, flags); // the server's range checks, here: a bad value is named by its line or flag
  const wandb = wandbConfig(p.values);
  if (wandb.wandbConfig)
    notice(
      "--wandb-* are accepted and ignored: metrics go to the job's metrics.jsonl and the dashboard; the key is not kept",
    );
  const body: Record<string, unknown> = { ...file, ...flags, ...wandb };
  const jobId = body.jobId as string | undefined;
  delete body.jobId;
  if (typeof body.jinjaTemplate === 'string') body.jinjaTemplate = templateText(body.jinjaTemplate);
  for (const r of RESOURCE_FLAGS) notALocalPath(body[r.key], r, fieldSource(r.key, file, flags));
  printOne(p, await p.client.request('POST', 'supervisedFineTuningJobs', body, { supervisedFineTuningJobId: jobId }));
  return 0;
}

const notice = (m: string) => console.error(`notice: ${m}`);

// firectl's Weights & Biases flags (the managed guide's "Training progress and monitoring"): sent as wandbConfig,
// which the server accepts and ignores with a notice (metrics go to the job's metrics.jsonl and dashboard).
const WANDB_FLAGS = {
  'wandb-entity': { type: 'string' },
  'wandb-api-key': { type: 'string' },
  'wandb-project': { type: 'string' },
} as const;

/** `{ wandbConfig }` from the --wandb-* flags, or nothing when none is given. */
function wandbConfig(values: Record<string, unknown>): Record<string, unknown> {
  const given = { entity: values['wandb-entity'], apiKey: values['wandb-api-key'], project: values['wandb-project'] };
  const set = Object.entries(given).filter(([, v]) => v !== undefined);
  return set.length ? { wandbConfig: { enabled: true, ...Object.fromEntries(set) } } : {};
}

// The fields that name a server's resource: a local file (a dataset) or dir (a model) must be put there first.
const RESOURCE_FLAGS = [
  { key: 'dataset', kind: 'dataset', id: 'my-data' },
  { key: 'evaluationDataset', kind: 'dataset', id: 'my-eval' },
  { key: 'baseModel', kind: 'model', id: 'my-model' },
  { key: 'warmStartFrom', kind: 'model', id: 'my-model' },
] as const;

/**
 * A local path where the server takes a resource name: one line saying how to upload or import it first, named by
 * `source` (the config file's line that set it) or else its flag.
 */
function notALocalPath(v: unknown, r: (typeof RESOURCE_FLAGS)[number], source: string | null): void {
  if (typeof v !== 'string' || isValidId(v) || v.startsWith('accounts/') || !fs.existsSync(v)) return;
  const put =
    r.kind === 'dataset'
      ? `the server takes a dataset id: \`lorasft dataset create ${r.id} ${shellQuote(v)}\``
      : `the server takes a model name: \`lorasft model import ${r.id} ${shellQuote(v)}\` (with --data-dir D when the server's data dir is not ./lorasft-data)`;
  const flag = `--${flagName(r.key)}`;
  throw new UserError(
    `${source ?? flag}: ${v} is a local ${r.kind === 'dataset' ? 'file' : 'directory'}; ${put}, then ${flag} ${r.id}`,
  );
}

/** --jinja-template FILE or text -> the text, checked here so that a broken file is named by its line. */
function templateText(given: string): string {
  const t = readTemplateOverride(given);
  createChatTemplate(t.text, {}, t.source, { sourceIsFile: t.isFile });
  return t.text;
}

function oneId(action: string, fn: (p: ReturnType<typeof parseVerb>, url: string) => Promise<unknown>) {
  return async (argv: string[]): Promise<number> => {
    const p = parseVerb(`sftj ${action}`, argv, {});
    const [id] = needArgs(`sftj ${action}`, p.args, ['ID']);
    await fn(p, refPath(p.client, 'supervisedFineTuningJobs', id));
    return 0;
  };
}

async function list(argv: string[]): Promise<number> {
  const p = parseVerb('sftj list', argv, { ...PAGE_FLAGS, filter: { type: 'string' } });
  needArgs('sftj list', p.args, []);
  const page = await p.client.request('GET', 'supervisedFineTuningJobs', undefined, {
    ...pageQuery(p),
    filter: p.values.filter as string | undefined,
  });
  printPage(p, page, 'supervisedFineTuningJobs', ['name', 'state', 'outputModel', 'createTime']);
  return 0;
}

export function run(argv: string[]): Promise<number> {
  return runNoun('sftj', HELP, argv, {
    create,
    get: oneId('get', async (p, url) => printOne(p, await p.client.request('GET', url))),
    list,
    cancel: oneId('cancel', async (p, url) => printOne(p, await p.client.request('POST', `${url}:cancel`, {}))),
    resume: oneId('resume', async (p, url) => printOne(p, await p.client.request('POST', `${url}:resume`, {}))),
    delete: oneId('delete', async (p, url) => {
      await p.client.request('DELETE', url);
      console.log(`deleted job ${url.split('/').pop()}`);
    }),
  });
}
