// `lorasft train`: run a LoRA SFT job (the managed job's fields as flags or a --config request body),
// or `lorasft train --resume OUT_DIR` to continue one. With neither --base-model nor --dataset: the bundled demo.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { UserError } from '../errors.ts';
import { parseFlags } from '../util/args.ts';
import {
  configFlagOptions,
  configFromFlags,
  configHelp,
  fieldSource,
  readConfigFile,
  resolveConfig,
  type TrainConfig,
} from '../train/config.ts';
import { FIELDS } from '../train/config_fields.ts';
import { DEMO_CONFIG, DEMO_DATASET, DEMO_OUT, ensureDemoModel } from '../train/demo.ts';
import { jobCommand, readJob, TERMINAL_STATES, type JobCommand } from '../train/job.ts';
import { checkJobInputs, train } from '../train/train.ts';
import {
  adapterBaseModel,
  requireAdapterDir,
  requireOutputApart,
  requireOutputDir,
  withFsErrors,
} from '../util/paths.ts';
import { listCheckpoints } from '../train/checkpoint.ts';
import { acquireJobLock, LOCK_FILE } from '../train/lock.ts';
import { INPUTS_FILE } from '../train/fingerprint.ts';
import { readJsonObject, requireDir, requireJsonlName } from '../util/files.ts';
import { abs, lorasftCommand, lorasftRerun, shellArgs } from '../util/invocation.ts';
import { checkWarmStartBase } from '../train/warm_start.ts';
import type { WarmStart } from '../train/load.ts';
import { checkAdapterBase, loadAdapter, PEFT_DEFAULT_ALPHA } from '../model/peft.ts';

const HELP = `usage: lorasft train --base-model DIR --dataset FILE.jsonl [--output-model OUT_DIR] [flags]
       lorasft train --config JOB.json [flags]        (the managed job's REST request body; flags override it)
       lorasft train --resume OUT_DIR                 (continue a cancelled / killed job from its last checkpoint)
       lorasft train                                  (the bundled demo: tiny Qwen3 model, examples/demo/train.jsonl)

Writes OUT_DIR/adapter_config.json + adapter_model.safetensors (PEFT), job.json, metrics.jsonl,
resolved_config.json and checkpoints/. Ctrl-C checkpoints and exits 130 (state CANCELLED).

flags (config field in brackets):
  --config FILE                      job request body JSON (camelCase fields; unknown fields are errors)
  --resume OUT_DIR                   continue the job in OUT_DIR (only --backend / --threads may change)
  --overwrite                        replace an existing job in OUT_DIR
${configHelp()}`;

// A write that fails mid-job (disk full, ...) is one line naming the path.
export const run = withFsErrors(async (argv: string[]): Promise<number> => {
  const { values, positionals } = parseFlags('train', argv, {
    ...configFlagOptions(),
    config: { type: 'string' },
    resume: { type: 'string' },
    overwrite: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length)
    throw new UserError(
      `lorasft train: unexpected argument '${positionals[0]}' (flags only; see lorasft train --help)`,
    );
  keepRunningOnClosedPipe();
  const notice = (m: string) => console.log(`notice: ${m}`);
  const cli = configFromFlags(values as Record<string, string | boolean | undefined>);

  // '--resume ""' (an unset variable) is an error, not the demo; --config and --overwrite would be silently ignored.
  const notForResume = (['config', 'overwrite'] as const).filter((k) => values[k] !== undefined).map((k) => `--${k}`);
  if (values.resume !== undefined) return resume(values.resume, cli, notice, notForResume);
  // '--output-model ""' (an unset variable) trained into out/<jobId>.
  if (cli.outputModel === '')
    throw new UserError(
      `--output-model: OUT_DIR is empty; expected the dir to write the job to (or no --output-model)`,
    );

  const file = values.config ? readConfigFile(values.config, notice) : {};
  let demo: Partial<TrainConfig> = {};
  // The demo when nothing says what to train: no base model, dataset or warm start, in the flags or the --config
  // file (configs/demo.json spells out the demo's own settings); file and flags still override its settings.
  const given = { ...file, ...cli };
  if (!given.baseModel && !given.dataset && !given.warmStartFrom) {
    console.log(
      `demo: no --base-model / --dataset given${values.config ? ` (nor in ${values.config})` : ''}: training the bundled demo (${path.relative(process.cwd(), DEMO_DATASET)})`,
    );
    demo = { ...DEMO_CONFIG, dataset: DEMO_DATASET, baseModel: ensureDemoModel(), outputModel: DEMO_OUT };
  }
  const cfg = resolveConfig(demo, file, cli);
  if (!cfg.baseModel && cfg.warmStartFrom) cfg.baseModel = adapterBaseModel(cfg.warmStartFrom, '--warm-start-from');
  if (!cfg.baseModel)
    throw new UserError(
      'lorasft train: --base-model DIR is required (or --warm-start-from an adapter whose base model is a local dir)',
    );
  if (!cfg.dataset) throw new UserError('lorasft train: --dataset FILE.jsonl is required');
  if (!cfg.jobId) cfg.jobId = randomUUID();
  if (!cfg.outputModel) cfg.outputModel = path.join('out', cfg.jobId);
  const warmStart = cfg.warmStartFrom ? checkWarmStart(cfg, notice) : undefined;

  const out = cfg.outputModel;
  checkJobInputs(cfg); // before the output dir is created or an old job in it replaced
  // A new job's dataset files end in .jsonl (not checked on --resume: a job started before the rule still resumes).
  for (const key of ['dataset', 'evaluationDataset'] as const)
    if (cfg[key]) requireJsonlName(cfg[key], fieldSource(key, file, cli) ?? undefined);
  requireOutputDir(out, '--output-model');
  requireOutputApart(out, cfg);
  // A job running in OUT_DIR is refused (naming its pid) before anything in it is looked at or replaced. The dir is
  // made first, so that two runs started together into a new dir meet at the lock too (the later one used to
  // replace the first one's half-started job, and both failed).
  fs.mkdirSync(out, { recursive: true });
  const release = acquireJobLock(out, notice);
  try {
    const started = { command: shellArgs(['train', ...argv]), cwd: process.cwd() };
    return await start(cfg, values.overwrite === true, notice, { started, warmStart });
  } finally {
    release();
  }
});

/** `opts`: the command line, recorded in job.json, and the warm start's adapter, checked and loaded. */
async function start(
  cfg: TrainConfig,
  overwrite: boolean,
  notice: (m: string) => void,
  opts: { started: JobCommand; warmStart?: WarmStart },
): Promise<number> {
  const out = cfg.outputModel;
  // The lock, and another run's lock being written (LOCK_FILE.PID, gone once that run is refused).
  const present = fs.readdirSync(out).filter((f) => f !== LOCK_FILE && !f.startsWith(`${LOCK_FILE}.`));
  if (present.length && !present.includes('job.json') && !overwrite) {
    throw new UserError(
      `${out}: not empty and holds no lorasft job (${present.slice(0, 3).join(', ')}${present.length > 3 ? ', ...' : ''}); choose another --output-model, or pass --overwrite to write into it`,
    );
  }
  if (present.includes('job.json')) {
    const prev = readJob(out);
    // Nothing to resume: a job that failed before its first checkpoint (e.g. a dataset error found while
    // validating), or one killed before its resolved config was written.
    const unstarted = !fs.existsSync(path.join(out, 'resolved_config.json'));
    const retry = (prev.state === 'JOB_STATE_FAILED' || unstarted) && listCheckpoints(out).length === 0;
    if (!overwrite && !retry) {
      const hint =
        TERMINAL_STATES.includes(prev.state) &&
        prev.state !== 'JOB_STATE_CANCELLED' &&
        prev.state !== 'JOB_STATE_FAILED'
          ? ''
          : ` continue it with \`${lorasftCommand('train', '--resume', abs(out))}\`, or`;
      throw new UserError(
        `${out}: already holds job ${prev.name} (${prev.state});${hint} pass --overwrite to replace it, or choose another --output-model`,
      );
    }
    notice(
      `${out}: replacing the previous job (${prev.state}${retry ? `, no checkpoint to resume: ${unstarted ? 'it was stopped before it started' : prev.status.message}` : ''})`,
    );
    for (const f of [
      'checkpoints',
      'adapter_model.safetensors',
      'adapter_config.json',
      'metrics.jsonl',
      'loss.svg',
      INPUTS_FILE,
    ])
      fs.rmSync(path.join(out, f), { recursive: true, force: true });
  }
  const r = await train(cfg, opts);
  if (r.exitCode === 0) printFinished(out, cfg);
  return r.exitCode;
}

/** The lines of a job that ended well (a fresh run or a resume): its adapter, a command to try it, its curves. */
function printFinished(out: string, cfg: TrainConfig): void {
  // The bundled demo's dataset (as the demo sets it, or as its resolved config records it) asks what it learned.
  const prompt = path.resolve(cfg.dataset) === DEMO_DATASET ? 'What is the capital of France?' : 'Hello!';
  console.log(
    `adapter: ${path.join(out, 'adapter_model.safetensors')} (+ adapter_config.json, job.json, metrics.jsonl)`,
  );
  console.log(
    `try it:  ${lorasftCommand('generate', '--base-model', abs(cfg.baseModel), '--adapter', abs(out), '--prompt', prompt)}`,
  );
  console.log(`curves:  ${lorasftCommand('plot', abs(out))}`);
}

/**
 * Continue the job in `out`, in place: whatever dir it was started in (a copied or moved job dir resumes where it
 * is now; the output path saved in resolved_config.json is never used), from any working directory (input paths
 * are recorded absolute). `flags`: other flags given that a resume cannot honour (--config, --overwrite): refused.
 */
async function resume(
  out: string,
  cli: Partial<TrainConfig>,
  notice: (m: string) => void,
  flags: string[],
): Promise<number> {
  if (!out) throw new UserError(`--resume: OUT_DIR is empty; expected the output dir of the job to continue`);
  requireDir(out, 'a lorasft train output dir to resume');
  if (!fs.existsSync(path.join(out, 'job.json')))
    throw new UserError(`${out}: not a lorasft job dir (no job.json to resume)`);
  const changed = [...flags, ...Object.keys(cli).filter((k) => !['backend', 'threads'].includes(k))];
  if (changed.length)
    throw new UserError(
      `--resume continues the job exactly as configured; only --backend and --threads may be given (got ${changed.map((k) => `'${k}'`).join(', ')})`,
    );
  const release = acquireJobLock(out, notice);
  try {
    const job = readJob(out);
    if (job.state === 'JOB_STATE_COMPLETED' || job.state === 'JOB_STATE_EARLY_STOPPED') {
      console.log(`${out}: job already finished (${job.state}): ${job.status.message}`);
      return 0;
    }
    const rc = path.join(out, 'resolved_config.json');
    if (!fs.existsSync(rc)) {
      const cmd = jobCommand(job); // none in an older lorasft's job.json
      const again = cmd ? ` (it replaces this job): ${lorasftRerun(cmd.command, cmd.cwd)}` : ': it replaces this job';
      throw new UserError(
        `${out}: job ${job.name} was stopped before it started (no resolved_config.json, nothing trained); run the command that started it again${again}`,
      );
    }
    const cfg = resolveConfig(readResolved(rc), cli, { outputModel: out });
    const r = await train(cfg, { resume: true });
    if (r.exitCode === 0) printFinished(out, cfg);
    return r.exitCode;
  } finally {
    release();
  }
}

/**
 * The saved config of a job to resume: the config fields and `backendUsed`, what train writes (an older job's has
 * fewer fields: defaults fill them). Any other key is a hand edit that would be ignored: refused, naming it.
 */
function readResolved(file: string): Partial<TrainConfig> {
  const { backendUsed: _, ...saved } = readJsonObject(file, 'the resolved config of the job to resume');
  const unknown = Object.keys(saved).find((k) => !(k in FIELDS));
  if (unknown !== undefined)
    throw new UserError(
      `${file}: unknown key "${unknown}" (expected the fields lorasft writes there: ${Object.keys(FIELDS).join(', ')}, backendUsed)`,
    );
  return saved as Partial<TrainConfig>;
}

/**
 * `lorasft train ... | head`: once the reader is gone, the lines written to that pipe are dropped and the job runs on
 * to its end (its state, metrics and adapter are in OUT_DIR), as it would with its output in a file. Without this, the
 * EPIPE was an uncaught error that killed the trainer with its job left VALIDATING or RUNNING. (preview, which has
 * nothing else to do, exits instead.)
 */
function keepRunningOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
}

/**
 * --warm-start-from, before anything is written: the adapter's rank and alpha are adopted, an adapter of another
 * base model is refused, and one of another family or of fewer layers, as merge and generate refuse it. Its
 * adapter_config.json and tensors are read once, here, and handed to the job.
 */
function checkWarmStart(cfg: TrainConfig, notice: (m: string) => void): WarmStart {
  requireAdapterDir(cfg.warmStartFrom, '--warm-start-from');
  const a = readJsonObject(path.join(cfg.warmStartFrom, 'adapter_config.json'), 'expected a PEFT adapter config');
  adoptAdapterRank(cfg, a, notice);
  const about = checkWarmStartBase(cfg.warmStartFrom, cfg.baseModel, a);
  const adapter = loadAdapter(cfg.warmStartFrom, a);
  checkAdapterBase(cfg.warmStartFrom, adapter, cfg.baseModel);
  return { adapter, about };
}

/** A warm start keeps the adapter's rank and alpha (PEFT's 8 when it has none); the resolved config records them. */
function adoptAdapterRank(cfg: TrainConfig, a: Record<string, unknown>, notice: (m: string) => void): void {
  if (typeof a.r === 'number' && a.r !== cfg.loraRank)
    notice(`warm start: LoRA rank ${a.r} from ${cfg.warmStartFrom} (not ${cfg.loraRank})`);
  if (typeof a.r === 'number') cfg.loraRank = a.r;
  cfg.loraAlpha = typeof a.lora_alpha === 'number' ? a.lora_alpha : PEFT_DEFAULT_ALPHA;
}
