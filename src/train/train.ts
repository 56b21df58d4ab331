// The training job shell, top to bottom: job state -> data -> model -> the loop (loop.ts) -> PEFT adapter.
// This file owns job.json, metrics.jsonl and the progress bar; the loss and the batcher are parameters. Everything
// random derives from (seed, epoch, step), so a run killed at any point and resumed from its last checkpoint ends
// with the same adapter bytes as an uninterrupted run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { initBackend } from '../backend/index.ts';
import { resolveThreads } from '../backend/threads.ts';
import { keepCpusAwake } from '../backend/keep_awake.ts';
import { modelPrecision, precisionLine } from '../model/precision.ts';
import { packExamples } from '../data/pack.ts';
import type { TokenizedExample } from '../data/types.ts';
import { loadBaseModel, type BaseModel } from '../model/model.ts';
import type { LoraWeights } from '../model/lora.ts';
import { saveAdapter } from '../model/peft.ts';
import { listModelTensors } from '../model/safetensors.ts';
import { createChatTemplate, readTemplateOverride } from '../data/template.ts';
import { Progress } from '../report/progress.ts';
import { requireJobInputs, requireOutputDir } from '../util/paths.ts';
import { testHook, testPause } from '../util/testhooks.ts';
import { absolutePaths, type TrainConfig } from './config.ts';
import { checkpointsDir, loadLatestCheckpoint, recoverCheckpoints, type TrainerState } from './checkpoint.ts';
import { createJob, readJob, setJobState, writeJob } from './job.ts';
import type { FailureCode, Job, JobCommand, JobState } from './job.ts';
import {
  appendMetrics,
  backendChange,
  metricsFile,
  readMetrics,
  truncateMetrics,
  type BackendUsed,
  type MetricsRow,
} from './metrics.ts';
import { createAdamWState } from './optimizer.ts';
import { makePlan, type Batcher, type StepPlan } from './plan.ts';
import { deriveSeed, STREAM } from '../util/random.ts';
import { learningRateAt } from './schedule.ts';
import { acquireJobLock } from './lock.ts';
import { checkFingerprint, fingerprint, recordResolved, writeFingerprint } from './fingerprint.ts';
import { rowsToBatch } from './step.ts';
import {
  failedWhile,
  jobCallbacks,
  restoreProgress,
  resumeCommand,
  setProgress,
  type JobRun,
  type LoopParts,
  type StopFlag,
} from './job_callbacks.ts';
import { loadData, loadLora, yieldToSignals, type Resumed, type WarmStart } from './load.ts';
import {
  evaluateAndTrack,
  modelLoss,
  syncVars,
  trainLoop,
  type Loop,
  type LoopEnd,
  type LoopState,
  type TrainLoss,
} from './loop.ts';

export { modelLoss, type TrainLoss } from './loop.ts';

export interface TrainOptions {
  /** Continue the job in cfg.outputModel from its latest checkpoint. */
  resume?: boolean;
  loss?: TrainLoss;
  batcher?: Batcher;
  /** Where the progress bar / log lines go (default stderr). */
  progressOut?: NodeJS.WriteStream;
  /** One-line messages (default console.log). */
  log?: (msg: string) => void;
  /** Install SIGINT/SIGTERM handlers that checkpoint and cancel (default true). */
  handleSignals?: boolean;
  started?: JobCommand; // a new job's command line and working dir, recorded in job.json
  warmStart?: WarmStart; // the --warm-start-from adapter, when the caller has checked and loaded it
}

export interface TrainResult {
  state: JobState;
  exitCode: number;
  outDir: string;
  job: Job;
  steps: number;
  evalLosses: number[];
}

const EXIT: Partial<Record<JobState, number>> = {
  JOB_STATE_COMPLETED: 0,
  JOB_STATE_EARLY_STOPPED: 0,
  JOB_STATE_CANCELLED: 130,
  JOB_STATE_FAILED: 1,
};

/**
 * Run a job, holding OUT_DIR's job lock throughout (one writer per job dir). SIGINT/SIGTERM (installed for the
 * whole job) finish the step in flight, checkpoint and cancel; while loading they cancel at the next stage.
 */
export async function train(cfg: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  const stop: StopFlag = { signal: null, loading: true };
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop.signal || stop.loading) {
      stop.signal ??= sig;
      stop.force?.(stop.loading ? `cancelled by ${sig} while loading` : `cancelled by a second ${sig}`); // the last checkpoint stays valid
      process.exit(130);
    }
    stop.signal = sig;
    process.stderr.write(`\n${sig}: stopping after the current step (again to quit at once)\n`);
  };
  if (opts.handleSignals ?? true) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  checkJobInputs(cfg);
  requireOutputDir(cfg.outputModel, '--output-model');
  fs.mkdirSync(cfg.outputModel, { recursive: true });
  const release = acquireJobLock(cfg.outputModel, opts.log ?? ((m) => console.log(`notice: ${m}`)));
  try {
    return await runJob(cfg, opts, stop);
  } finally {
    release();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * What a job reads, checked before anything is written (its OUT_DIR made, an old job there replaced, a resumed job
 * touched), so that a mistake is one error line and not a failed job: the input paths, the base model's weights (the
 * safetensors headers), a --jinja-template (it parses), the threads (LORASFT_THREADS too). Cheap: nothing is loaded.
 */
export function checkJobInputs(cfg: TrainConfig): void {
  requireJobInputs(cfg);
  listModelTensors(cfg.baseModel);
  if (cfg.jinjaTemplate) {
    const t = readTemplateOverride(cfg.jinjaTemplate);
    createChatTemplate(t.text, {}, t.source, { sourceIsFile: t.isFile });
  }
  resolveThreads(cfg.threads || undefined);
}

/** The job's inputs, loaded: tokenized examples, the base model with its LoRA weights, the backend. */
interface Loaded {
  base: BaseModel;
  lora: LoraWeights;
  trainEx: TokenizedExample[];
  evalEx: TokenizedExample[];
  backendUsed: BackendUsed;
}

async function runJob(cfg: TrainConfig, opts: TrainOptions, stop: StopFlag): Promise<TrainResult> {
  const log = opts.log ?? ((m: string) => console.log(m));
  const outDir = cfg.outputModel;
  const t0 = Date.now();
  const opened = openJob(cfg, opts, log); // resuming, precision 'auto' takes the job's resolved value
  const { job, resumed } = opened;
  cfg = opened.cfg;
  const j: JobRun = { cfg, outDir, job, resumed, log, startStep: resumed?.ck.state.step ?? 0, t0, runStart: t0 };
  stop.force = (why) => {
    const msg = `${why}; resume with: ${resumeCommand(outDir)}`;
    setJobState(job, 'JOB_STATE_CANCELLED', msg, outDir);
    log(`${msg} (JOB_STATE_CANCELLED)`); // as a cancel after a step says it (finish)
  };
  const fail = (message: string, code: FailureCode): TrainResult => {
    setJobState(job, 'JOB_STATE_FAILED', message, outDir, { code });
    return { state: job.state, exitCode: 1, outDir, job, steps: resumed?.ck.state.step ?? 0, evalLosses: [] };
  };
  let loaded: Loaded;
  try {
    loaded = await load(j, opts);
  } catch (e) {
    // Found while VALIDATING: bad input is INVALID_ARGUMENT (and, with no checkpoint, a re-run may replace the job).
    if (e instanceof UserError) fail(e.message, 'INVALID_ARGUMENT');
    else fail(`internal error: ${(e as Error).message}`, 'INTERNAL');
    throw e;
  }
  cfg = j.cfg; // load() resolves precision 'auto'
  j.runStart = Date.now();
  const batcher = opts.batcher ?? packExamples;
  const plan = makePlan(loaded.trainEx, batcher, cfg);
  const evalBatches = loaded.evalEx.length
    ? batcher(loaded.evalEx, { batchSize: cfg.batchSize, seed: deriveSeed(cfg.seed, STREAM.carveout) }).map((r) =>
        rowsToBatch([r]),
      )
    : [];
  const problem = announcePlan(j, plan, evalBatches.length > 0);
  if (problem) return fail(problem, 'FAILED_PRECONDITION');
  const run = startState(loaded.lora, plan.totalSteps, resumed);
  const loss = opts.loss ?? modelLoss(cfg.checkpointActivations);
  const parts: LoopParts = { cfg, plan, loss, base: loaded.base, lora: loaded.lora, evalBatches, run };
  const out = await runLoop(j, parts, loaded.backendUsed, opts, stop);
  const result = finish(j, parts, out.end, out.evalLosses);
  await testPause('finished', cfg.jobId, j.outDir, () => stop.signal !== null); // tests: a signal after the end
  return result;
}

/** resolved_config.json: the config as resolved so far (input paths absolute, precision) and the backend used. */
function writeResolved(cfg: TrainConfig, backendUsed?: BackendUsed): void {
  const text = JSON.stringify({ ...absolutePaths(cfg), ...(backendUsed ? { backendUsed } : {}) }, null, 2) + '\n';
  writeFileAtomic(path.join(cfg.outputModel, 'resolved_config.json'), text);
}

/** job.json first (so a dir killed at any instant is a job dir), or the job in OUT_DIR with its latest checkpoint. */
function openJob(
  cfg: TrainConfig,
  { resume = false, started }: TrainOptions,
  log: (m: string) => void,
): { job: Job; resumed: Resumed; cfg: TrainConfig } {
  const outDir = cfg.outputModel;
  const job = resume ? readJob(outDir) : createJob(cfg, new Date(), started);
  if (resume && typeof job.outputModel === 'string') job.outputModel = outDir; // a moved or copied job dir
  if (resume) cfg = checkFingerprint(outDir, cfg, (m) => log(`notice: ${m}`)); // changed inputs: refused, nothing written
  if (resume) recoverCheckpoints(outDir); // a killed process's half-written checkpoint
  const resumed = resume ? loadLatestCheckpoint(outDir, (m) => log(`warning: ${m}`)) : null;
  if (!resume) {
    writeJob(job, outDir);
    testHook('after-job-json');
    writeResolved(cfg);
    writeFileAtomic(metricsFile(outDir), '');
  } else truncateMetrics(outDir, resumed ? resumed.ck.state.step : -1);
  setJobState(
    job,
    'JOB_STATE_VALIDATING',
    resumed ? `resuming from ${resumed.dir}` : 'validating dataset and model',
    outDir,
  );
  return { job, resumed, cfg };
}

/** Backend, data and model, with a line for each (the job stays VALIDATING throughout). */
async function load(j: JobRun, { resume, warmStart }: TrainOptions): Promise<Loaded> {
  const { cfg, outDir, job, log } = j;
  if (!resume) writeFingerprint(outDir, fingerprint(cfg)); // a model dir without weights fails here
  const backend = await initBackend({ backend: cfg.backend || undefined, threads: cfg.threads || undefined });
  log(`backend: ${backend.name} (${backend.reason})`);
  const backendUsed: BackendUsed = {
    name: backend.name,
    library: backend.library,
    threads: backend.threads,
    reason: backend.reason,
    requested: cfg.backend || 'auto',
  };
  j.backendUsed = backendUsed;
  const change = j.resumed && backendChange(outDir, backendUsed); // before the resume records its own
  if (change) log(`notice: ${change}`);
  writeResolved(cfg, backendUsed);
  job.local = { ...(job.local as object | undefined), backend: backendUsed }; // after the command (createJob)
  const { trainEx, evalEx, requests } = await loadData(cfg, log);
  job.jobProgress.totalInputRequests = requests;
  const precision = modelPrecision(cfg.baseModel, cfg.precision);
  if (cfg.precision !== precision) {
    j.cfg = { ...cfg, precision };
    // 'auto' is recorded as what it resolved to, in the config and the fingerprint alike (resume compares them and
    // continues with it), whichever run resolves it first: a job stopped while loading resolves it at its resume.
    writeResolved(j.cfg, backendUsed);
    recordResolved(outDir, { precision });
  }
  log(`precision: ${precisionLine(precision)}`);
  const base = await loadBaseModel(cfg.baseModel, { precision });
  await yieldToSignals();
  const lora = loadLora(cfg, base, j.resumed, log, warmStart);
  const c = base.config;
  log(
    `model: ${c.modelType} ${c.numLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}; LoRA r=${lora.cfg.rank} alpha=${lora.cfg.alpha} on ${lora.cfg.targets.join(',')} (${[...lora.values()].reduce((n, v) => n + v.size, 0)} trainable params)`,
  );
  return { base, lora, trainEx, evalEx, backendUsed };
}

/** Lines about the plan (warmup, early stop, resume); a reason the job cannot run, or null. */
function announcePlan(j: JobRun, plan: StepPlan, hasEval: boolean): string | null {
  const { cfg, resumed, log } = j;
  const total = plan.totalSteps;
  if (cfg.earlyStop && !hasEval)
    log('notice: earlyStop needs an eval set (evaluationDataset or the carve-out); training runs to the end');
  if (cfg.learningRateWarmupSteps > total)
    log(
      `warning: learningRateWarmupSteps ${cfg.learningRateWarmupSteps} is longer than the run (${total} step${total === 1 ? '' : 's'}): the learning rate peaks at ${learningRateAt(total - 1, { learningRate: cfg.learningRate, warmupSteps: cfg.learningRateWarmupSteps, totalSteps: total, scheduler: cfg.lrScheduler }).toPrecision(3)}, not ${cfg.learningRate}`,
    );
  if (resumed && resumed.ck.state.totalSteps !== total)
    return `cannot resume: the data now gives ${total} steps, the checkpoint was made for ${resumed.ck.state.totalSteps} (did the dataset change?)`;
  const startStep = j.startStep;
  if (resumed)
    log(
      `resuming from checkpoint step ${startStep} of ${total} (epoch ${plan.epochProgress(startStep).toFixed(2)}): ${resumed.dir}`,
    );
  const evalEvery = cfg.evalEverySteps || Math.max(1, Math.round(total / 10));
  log(
    `plan: ${total} optimizer steps (${cfg.epochs} epoch${cfg.epochs === 1 ? '' : 's'}: ${plan.epochSteps.join(' + ')}${cfg.maxSteps && total < plan.epochStart.at(-1)! ? `, cut to maxSteps ${cfg.maxSteps}` : ''}), ${cfg.gradientAccumulationSteps} x ${cfg.batchSize}-token micro-batches per step; eval every ${evalEvery} steps${hasEval ? '' : ' (no eval set)'}`,
  );
  return null;
}

/** The loop's state: fresh, or the checkpoint's (parameters, AdamW moments, counters, best). */
function startState(lora: LoraWeights, total: number, resumed: Resumed): LoopState {
  const params = new Map([...lora].map(([k, v]) => [k, Float32Array.from(v.dataSync())])); // float32 master copy
  const st: TrainerState = resumed?.ck.state ?? {
    step: 0,
    totalSteps: total,
    bestEvalLoss: null,
    bestStep: 0,
    evalsWithoutImprovement: 0,
    inputTokens: 0,
    outputTokens: 0,
    elapsedS: 0,
  };
  const best = resumed?.ck.best ? new Map([...resumed.ck.best].map(([k, t]) => [k, t.data])) : null;
  return { params, adam: resumed ? resumed.ck.adam : createAdamWState(params), st, best, doing: '' };
}

/**
 * The loop, wired to the job (job_callbacks.ts): metrics.jsonl, where the first row this process writes records the
 * backend; the job RUNNING, the step-0 evaluation, then the steps; a failure recorded in job.json.
 */
async function runLoop(
  j: JobRun,
  parts: LoopParts,
  backendUsed: BackendUsed,
  opts: TrainOptions,
  stop: StopFlag,
): Promise<{ end: LoopEnd; evalLosses: number[] }> {
  const { outDir, job } = j;
  const { plan, run } = parts;
  const st = run.st;
  const total = plan.totalSteps;
  let firstRow = true;
  const record = (row: MetricsRow) => {
    appendMetrics(outDir, firstRow ? { ...row, backend: backendUsed } : row);
    firstRow = false;
  };
  const progress = new Progress(opts.progressOut ?? process.stderr, total);
  // Eval losses of the whole job (a resumed run starts with those before its checkpoint).
  const evalLosses: number[] = readMetrics(outDir).flatMap((r) => ('eval_loss' in r ? [r.eval_loss] : []));
  const loop: Loop = { ...parts, on: jobCallbacks(j, parts, { record, progress, evalLosses, stop }) };
  stop.loading = false;
  const rest = keepCpusAwake(backendUsed); // until the loop ends: idle CPUs between kernels cost (keep_awake.ts)
  try {
    restoreProgress(job, plan, st, j.startStep); // counters as of the checkpoint resumed from
    setJobState(job, 'JOB_STATE_RUNNING', `training: ${total} steps`, outDir);
    if (!j.resumed && loop.evalBatches.length) evaluateAndTrack(loop); // the starting point, at step 0
    return { end: await trainLoop(loop), evalLosses };
  } catch (err) {
    progress.end();
    throw failedWhile(j, run.doing || `step ${st.step + 1}`, err);
  } finally {
    rest();
    progress.end();
  }
}

/** The job's end: the adapter (with earlyStop the best-eval weights, else the last ones) and the final state. */
function finish(j: JobRun, loop: LoopParts, end: LoopEnd, evalLosses: number[]): TrainResult {
  const { cfg, outDir, job, resumed } = j;
  const { run, lora } = loop;
  const st = run.st;
  const total = loop.plan.totalSteps;
  const final: JobState = {
    completed: 'JOB_STATE_COMPLETED',
    'early-stopped': 'JOB_STATE_EARLY_STOPPED',
    cancelled: 'JOB_STATE_CANCELLED',
    'non-finite': 'JOB_STATE_FAILED',
  }[end.kind] as JobState;
  let msg = '';
  if (end.kind === 'cancelled')
    msg = `cancelled by ${end.signal} after step ${st.step}/${total}; resume with: ${resumeCommand(outDir)}`;
  if (end.kind === 'non-finite') {
    const bad = end.badWeight;
    const cause = bad
      ? `: the base model produced non-finite values (its weight ${bad} in ${cfg.baseModel} holds NaN or Inf); stopped.`
      : `; stopped. Last good checkpoint: ${checkpointsDir(outDir)}. Try a lower learning rate.`;
    msg = `step ${end.step}: ${Number.isFinite(end.trainLoss) ? `gradient norm is ${end.gradNorm}` : `train loss is ${end.trainLoss}`} (non-finite)${cause}`;
  }
  const useBest = cfg.earlyStop && run.best !== null;
  if (end.kind === 'completed' || end.kind === 'early-stopped') {
    if (useBest) for (const [k, d] of run.best!) run.params.get(k)!.set(d);
    syncVars(lora, run.params);
    try {
      saveAdapter(outDir, lora, lora.cfg, path.resolve(cfg.baseModel));
    } catch (err) {
      throw failedWhile(j, 'writing the adapter', err);
    }
  }
  if (end.kind === 'early-stopped')
    msg = `early stop at step ${st.step}/${total}: eval loss did not improve for ${cfg.earlyStopPatience} evaluations; kept the best adapter (eval loss ${st.bestEvalLoss!.toFixed(4)} at step ${st.bestStep})`;
  if (end.kind === 'completed') {
    // One clock: training time summed over the runs of this job (what checkpoints record as elapsedS).
    const lastEval = evalLosses.at(-1);
    msg =
      `completed ${total} steps in ${(st.elapsedS + (Date.now() - j.runStart) / 1000).toFixed(1)} s of training${resumed ? ` (${st.elapsedS.toFixed(1)} s before the resume at step ${j.startStep})` : ''}` +
      (lastEval !== undefined ? `; eval loss ${evalLosses[0].toFixed(4)} -> ${lastEval.toFixed(4)}` : '') +
      (useBest ? ` (adapter from step ${st.bestStep}, best eval loss ${st.bestEvalLoss!.toFixed(4)})` : '');
    setProgress(job, loop.plan, st, total);
  }
  setJobState(job, final, msg, outDir);
  // Each final message already says how the job ended ('completed 52 steps ...', 'cancelled by SIGINT ...').
  j.log(`${msg} (${final}; loading took ${((j.runStart - j.t0) / 1000).toFixed(1)} s)`);
  return { state: final, exitCode: EXIT[final] ?? 1, outDir, job, steps: st.step, evalLosses };
}
