// The training job, top to bottom (nanoGPT train.py / mlx-lm trainer.py style): job state -> data -> model ->
// loop (token-weighted accumulation, clip, AdamW, schedule, eval, early stop, checkpoints) -> PEFT adapter.
// The loss and the batcher are parameters; everything random derives from (seed, epoch, step), so a run killed
// at any point and resumed from its last checkpoint ends with the same adapter bytes as an uninterrupted run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { initBackend } from '../backend/index.ts';
import { bf16Support, checkpointDtype, precisionLine, resolvePrecision } from '../model/precision.ts';
import { loadDataset } from '../data/validate.ts';
import { loadChatTokenizer } from '../data/tokenizer.ts';
import { buildExamples } from '../data/pipeline.ts';
import { packExamples } from '../data/pack.ts';
import type { DatasetExample, TokenizedExample } from '../data/types.ts';
import { loadBaseModel, lossAndGrads, lossSum, type BaseModel, type Batch } from '../model/model.ts';
import { DEFAULT_LORA_TARGETS, initLora, loraFromTensors, type LoraWeights } from '../model/lora.ts';
import { loadAdapter, saveAdapter } from '../model/peft.ts';
import type { FloatTensor } from '../model/safetensors.ts';
import type { TrainConfig } from './config.ts';
import { carveOut } from './carveout.ts';
import { checkpointsDir, loadLatestCheckpoint, saveCheckpoint, type TrainerState } from './checkpoint.ts';
import { createJob, readJob, setJobState, writeJob, type FailureCode, type Job, type JobState } from './job.ts';
import { appendMetrics, metricsFile, readMetrics, truncateMetrics, type BackendUsed, type MetricsRow } from './metrics.ts';
import { ADAMW_DEFAULTS, adamwStep, clipGradNorm, createAdamWState } from './optimizer.ts';
import { makePlan, type Batcher } from './plan.ts';
import { Progress } from './progress.ts';
import { deriveSeed, STREAM } from './rng.ts';
import { learningRateAt } from './schedule.ts';
import { fsErrorToUser, requireJobInputs, requireOutputDir } from './paths.ts';
import { acquireJobLock } from './lock.ts';
import { checkFingerprint, fingerprint, writeFingerprint } from './fingerprint.ts';
import { testHook, testPause } from '../util/testhooks.ts';
import { checkWarmStartBase } from './warm_start.ts';
import { abs, lorasftCommand } from '../util/invocation.ts';
import { accumulateStep, rowsToBatch, trainedTokens, type MicroResult } from './step.ts';

/** The loss, as a parameter of train(): gradients of the unnormalised sum for training, the sum for eval. */
export interface TrainLoss {
  withGrads(base: BaseModel, lora: LoraWeights, batch: Batch, dropoutSeed: number): MicroResult;
  value(base: BaseModel, lora: LoraWeights, batch: Batch): number;
}

/** The model's own loss; `checkpoint` is the activation-checkpointing mode (config checkpointActivations). */
export function modelLoss(checkpoint: TrainConfig['checkpointActivations'] = 'auto'): TrainLoss {
  const mode = checkpoint === 'auto' ? 'auto' : checkpoint === 'on';
  return { ...MODEL_LOSS, withGrads: (base, lora, batch, dropoutSeed) => lossAndGrads(base, lora, batch, { dropoutSeed, checkpoint: mode }) };
}

export const MODEL_LOSS: TrainLoss = {
  withGrads: (base, lora, batch, dropoutSeed) => lossAndGrads(base, lora, batch, { dropoutSeed }),
  value: (base, lora, batch) => {
    const { loss } = lossSum(base, lora, batch, { forBackward: false }); // eval: no gradient work
    const v = loss.dataSync()[0];
    loss.dispose();
    return v;
  },
};

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
}

export interface TrainResult {
  state: JobState;
  exitCode: number;
  outDir: string;
  job: Job;
  steps: number;
  evalLosses: number[];
}

const EXIT: Partial<Record<JobState, number>> = { JOB_STATE_COMPLETED: 0, JOB_STATE_EARLY_STOPPED: 0, JOB_STATE_CANCELLED: 130, JOB_STATE_FAILED: 1 };

/**
 * Set by SIGINT/SIGTERM; the loop checks it between steps. `force(msg)` records CANCELLED before exiting at once:
 * on a second signal, or on the first one while the job is still loading (nothing to checkpoint yet).
 */
interface StopFlag {
  signal: string | null;
  loading: boolean;
  force?: (why: string) => void;
}

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
  requireJobInputs(cfg); // missing inputs are errors before anything is written
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

/** Let pending signal handlers run (between loading stages and steps). */
const yieldToSignals = () => new Promise((r) => setImmediate(r));

async function runJob(cfg: TrainConfig, opts: TrainOptions, stop: StopFlag): Promise<TrainResult> {
  const log = opts.log ?? ((m: string) => console.log(m));
  const loss = opts.loss ?? modelLoss(cfg.checkpointActivations);
  const batcher = opts.batcher ?? packExamples;
  const outDir = cfg.outputModel;
  const t0 = Date.now();

  // ---- job: new (job.json first, so a dir killed at any instant is a job dir), or resumed from OUT_DIR ----
  const job = opts.resume ? readJob(outDir) : createJob(cfg);
  if (opts.resume && typeof job.outputModel === 'string') job.outputModel = outDir; // a moved or copied job dir
  if (opts.resume) cfg = checkFingerprint(outDir, cfg, (m) => log(`notice: ${m}`)); // changed inputs: refused, nothing written
  const resumed = opts.resume ? loadLatestCheckpoint(outDir, (m) => log(`warning: ${m}`)) : null;
  let backendUsed: BackendUsed | undefined;
  /** resolved_config.json: the config as resolved so far (input paths absolute, precision) and the backend used. */
  const writeResolved = () =>
    writeFileAtomic(path.join(outDir, 'resolved_config.json'), JSON.stringify({ ...absolutePaths(cfg), ...(backendUsed ? { backendUsed } : {}) }, null, 2) + '\n');
  if (!opts.resume) {
    writeJob(job, outDir);
    testHook('after-job-json');
    writeResolved();
    writeFileAtomic(metricsFile(outDir), '');
  } else truncateMetrics(outDir, resumed ? resumed.ck.state.step : -1);
  setJobState(job, 'JOB_STATE_VALIDATING', resumed ? `resuming from ${resumed.dir}` : 'validating dataset and model', outDir);
  stop.force = (why) => setJobState(job, 'JOB_STATE_CANCELLED', `${why}; resume with: ${lorasftCommand('train', '--resume', abs(outDir))}`, outDir);
  const fail = (message: string, code: FailureCode): TrainResult => {
    setJobState(job, 'JOB_STATE_FAILED', message, outDir, { code });
    return { state: job.state, exitCode: 1, outDir, job, steps: resumed?.ck.state.step ?? 0, evalLosses: [] };
  };

  let firstRow = true;
  /** metrics.jsonl; the first row this process writes records the backend that computed it. */
  const record = (row: MetricsRow) => {
    appendMetrics(outDir, firstRow && backendUsed ? { ...row, backend: backendUsed } : row);
    firstRow = false;
  };
  let base: BaseModel;
  let lora: LoraWeights;
  let trainEx: TokenizedExample[];
  let evalEx: TokenizedExample[];
  try {
    const inputs = opts.resume ? null : fingerprint(cfg); // a model dir without weights fails here
    if (inputs) writeFingerprint(outDir, inputs);
    const backend = await initBackend({ backend: cfg.backend || undefined, threads: cfg.threads || undefined });
    log(`backend: ${backend.name} (${backend.reason})`);
    backendUsed = { name: backend.name, library: backend.library, threads: backend.threads, reason: backend.reason, requested: cfg.backend || 'auto' };
    writeResolved();
    job.local = { backend: backendUsed };

    // ---- data: validate -> carve out eval -> render/tokenize/mask/truncate ----
    const tok = await loadChatTokenizer(cfg.baseModel, { jinjaTemplate: cfg.jinjaTemplate || undefined });
    let trainRaw: DatasetExample[] = loadDataset(cfg.dataset, { epochs: cfg.epochs });
    testHook('loading');
    await yieldToSignals();
    let evalRaw: DatasetExample[] = [];
    if (cfg.evaluationDataset) evalRaw = loadDataset(cfg.evaluationDataset, {});
    else if (cfg.evalAutoCarveout) {
      const split = carveOut(trainRaw, cfg.seed);
      if (split.skipped) log(`notice: ${split.skipped}`);
      [trainRaw, evalRaw] = [split.train, split.eval];
    }
    const warn = (m: string) => log(`warning: ${m}`);
    const built = buildExamples(trainRaw, tok, { maxContextLength: cfg.maxContextLength, warn });
    trainEx = built.examples;
    evalEx = evalRaw.length ? buildExamples(evalRaw, tok, { maxContextLength: cfg.maxContextLength, warn }).examples : [];
    await yieldToSignals();
    log(`data: ${trainRaw.length} training examples (${trainEx.length} after reasoning expansion, ${built.stats.trainedTokens} trained tokens), ${evalEx.length} eval examples${cfg.evaluationDataset ? ` from ${cfg.evaluationDataset}` : evalEx.length ? ' (carve-out)' : ''}`);
    job.jobProgress.totalInputRequests = trainRaw.length;

    // ---- model: base + LoRA (fresh, warm start, or checkpoint) ----
    const precision = resolvePrecision(cfg.precision, checkpointDtype(cfg.baseModel), bf16Support());
    if (cfg.precision !== precision) {
      // 'auto' is recorded as what it resolved to, in the config and the fingerprint alike (resume compares them).
      cfg = { ...cfg, precision };
      if (inputs) {
        writeResolved();
        writeFingerprint(outDir, { ...inputs, hyperparameters: { ...inputs.hyperparameters, precision } });
      }
    }
    log(`precision: ${precisionLine(precision)}`);
    base = await loadBaseModel(cfg.baseModel, { precision });
    await yieldToSignals();
    const loraCfg = { rank: cfg.loraRank, alpha: cfg.loraAlpha, targets: DEFAULT_LORA_TARGETS, dropout: cfg.loraDropout, useRslora: false };
    if (resumed) lora = loraFromTensors(base, resumed.ck.params, loraCfg, resumed.dir);
    else if (cfg.warmStartFrom) {
      const about = checkWarmStartBase(cfg.warmStartFrom, cfg.baseModel);
      const a = loadAdapter(cfg.warmStartFrom);
      lora = loraFromTensors(base, a.lora, { ...loraCfg, rank: a.cfg.rank, alpha: a.cfg.alpha, useRslora: a.cfg.useRslora }, cfg.warmStartFrom);
      log(`warm start: loaded ${a.lora.size} tensors from ${path.resolve(cfg.warmStartFrom)}: ${about}`);
    } else lora = initLora(base, loraCfg, cfg.seed);
    const c = base.config;
    log(`model: ${c.modelType} ${c.numLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}; LoRA r=${lora.cfg.rank} alpha=${lora.cfg.alpha} on ${lora.cfg.targets.join(',')} (${[...lora.values()].reduce((n, v) => n + v.size, 0)} trainable params)`);
  } catch (e) {
    // Found while VALIDATING: bad input is INVALID_ARGUMENT (and, with no checkpoint, a re-run may replace the job).
    if (e instanceof UserError) fail(e.message, 'INVALID_ARGUMENT');
    else fail(`internal error: ${(e as Error).message}`, 'INTERNAL');
    throw e;
  }

  // ---- plan, optimizer, state ----
  const runStart = Date.now();
  const plan = makePlan(trainEx, batcher, cfg);
  const T = plan.totalSteps;
  const evalEvery = cfg.evalEverySteps || Math.max(1, Math.round(T / 10));
  const ckptEvery = cfg.checkpointEverySteps || evalEvery;
  const evalBatches = evalEx.length ? batcher(evalEx, { batchSize: cfg.batchSize, seed: deriveSeed(cfg.seed, STREAM.carveout) }).map((r) => rowsToBatch([r])) : [];
  if (cfg.earlyStop && !evalBatches.length) log('notice: earlyStop needs an eval set (evaluationDataset or the carve-out); training runs to the end');
  const shapes = new Map([...lora].map(([k, v]) => [k, v.shape]));
  const params = new Map([...lora].map(([k, v]) => [k, Float32Array.from(v.dataSync())])); // float32 master copy
  const adam = resumed ? resumed.ck.adam : createAdamWState(params);
  const withShapes = (m: Map<string, Float32Array>) => new Map<string, FloatTensor>([...m].map(([k, d]) => [k, { shape: shapes.get(k)!, data: d }]));
  const st: TrainerState = resumed?.ck.state ?? { step: 0, totalSteps: T, bestEvalLoss: null, bestStep: 0, evalsWithoutImprovement: 0, inputTokens: 0, outputTokens: 0, elapsedS: 0 };
  let best: Map<string, Float32Array> | null = resumed?.ck.best ? new Map([...resumed.ck.best].map(([k, t]) => [k, t.data])) : null;
  if (cfg.learningRateWarmupSteps > T) log(`warning: learningRateWarmupSteps ${cfg.learningRateWarmupSteps} is longer than the run (${T} step${T === 1 ? '' : 's'}): the learning rate peaks at ${learningRateAt(T - 1, { learningRate: cfg.learningRate, warmupSteps: cfg.learningRateWarmupSteps, totalSteps: T, scheduler: cfg.lrScheduler }).toPrecision(3)}, not ${cfg.learningRate}`);
  if (resumed && resumed.ck.state.totalSteps !== T) return fail(`cannot resume: the data now gives ${T} steps, the checkpoint was made for ${resumed.ck.state.totalSteps} (did the dataset change?)`, 'FAILED_PRECONDITION');
  const startStep = st.step; // st is the checkpoint's state object on resume: keep where this process began
  if (resumed) log(`resuming from checkpoint step ${startStep} of ${T} (epoch ${plan.epochProgress(startStep).toFixed(2)}): ${resumed.dir}`);
  log(`plan: ${T} optimizer steps (${cfg.epochs} epoch${cfg.epochs === 1 ? '' : 's'}: ${plan.epochSteps.join(' + ')}${cfg.maxSteps && T < plan.epochStart.at(-1)! ? `, cut to maxSteps ${cfg.maxSteps}` : ''}), ${cfg.gradientAccumulationSteps} x ${cfg.batchSize}-token micro-batches per step; eval every ${evalEvery} steps${evalBatches.length ? '' : ' (no eval set)'}`);

  const syncVars = () => {
    for (const [k, v] of lora) {
      const t = tf.tensor(params.get(k)!, shapes.get(k)!);
      v.assign(t);
      t.dispose();
    }
  };
  /** Records FAILED for an error thrown while `what` ('step 4'); returns it, an fs error as a line naming its path. */
  const failedWhile = (what: string, err: unknown): unknown => {
    const e = fsErrorToUser(err); // a failed write (disk full) names its path
    const user = e instanceof UserError;
    const fsError = e !== err;
    const msg = `${what}: ${user ? '' : 'internal error: '}${(e as Error).message}${fsError ? `; once it can be written, resume with: lorasft train --resume ${outDir}` : ''}`;
    try {
      setJobState(job, 'JOB_STATE_FAILED', msg, outDir, { code: user && !fsError ? 'INVALID_ARGUMENT' : 'INTERNAL' });
    } catch (w) {
      log(`warning: could not record the failure in ${path.join(outDir, 'job.json')}: ${(fsErrorToUser(w) as Error).message}`);
    }
    return e;
  };
  let doing = ''; // what the loop is doing, for a failure message ('step 4', 'checkpoint of step 3')
  const checkpoint = () => {
    doing = `checkpoint of step ${st.step}`;
    saveCheckpoint(outDir, { state: { ...st, elapsedS: st.elapsedS + (Date.now() - runStart) / 1000 }, params: withShapes(params), adam, best: best && withShapes(best) }, (dir) => saveAdapter(dir, lora, lora.cfg, path.resolve(cfg.baseModel)), cfg.keepCheckpoints);
  };
  const evaluate = (): number => {
    let sum = 0;
    let n = 0;
    for (const b of evalBatches) {
      sum += loss.value(base, lora, b);
      n += trainedTokens(b);
    }
    return sum / n;
  };
  const progressOf = (done: number) => {
    Object.assign(job.jobProgress, { percent: Math.round((1000 * done) / T) / 10, epoch: Number(plan.epochProgress(done).toFixed(4)), inputTokens: st.inputTokens, outputTokens: st.outputTokens });
  };

  const progress = new Progress(opts.progressOut ?? process.stderr, T);
  // Eval losses of the whole job (a resumed run starts with those before its checkpoint).
  const evalLosses: number[] = readMetrics(outDir).flatMap((r) => ('eval_loss' in r ? [r.eval_loss] : []));
  let lastJobWrite = 0;
  let final: JobState = 'JOB_STATE_COMPLETED';
  let finalMsg = '';
  stop.loading = false;
  try {
    setJobState(job, 'JOB_STATE_RUNNING', `training: ${T} steps`, outDir);
    let lastEval: number | null = st.bestEvalLoss;
    if (!resumed && evalBatches.length) {
      lastEval = evaluate(); // the starting point, at step 0
      evalLosses.push(lastEval);
      Object.assign(st, { bestEvalLoss: lastEval, bestStep: 0 });
      best = new Map([...params].map(([k, d]) => [k, d.slice()]));
      record({ step: 0, epoch: 0, eval_loss: lastEval, time: new Date().toISOString() });
      log(`step 0: eval loss ${lastEval.toFixed(4)}`);
    }
    while (st.step < T) {
      if (stop.signal) {
        checkpoint();
        final = 'JOB_STATE_CANCELLED';
        finalMsg = `cancelled by ${stop.signal} after step ${st.step}/${T}; resume with: ${lorasftCommand('train', '--resume', abs(outDir))}`;
        break;
      }
      const step = st.step; // 0-based index of the step being taken
      doing = `step ${step + 1}`;
      const e = plan.epochOf(step);
      const tStep = Date.now();
      const rows = plan.stepRows(step);
      const micro = rows.map((r) => rowsToBatch([r]));
      const lr = learningRateAt(step, { learningRate: cfg.learningRate, warmupSteps: cfg.learningRateWarmupSteps, totalSteps: T, scheduler: cfg.lrScheduler });
      const g = accumulateStep(micro, (b, i) => loss.withGrads(base, lora, b, deriveSeed(cfg.seed, STREAM.dropout, step, i)));
      const trainLoss = g.lossSum / g.tokens;
      const norm = clipGradNorm(g.grads, cfg.maxGradNorm);
      if (!Number.isFinite(trainLoss) || !Number.isFinite(norm)) {
        checkpoint(); // the parameters before this step: the last good state
        final = 'JOB_STATE_FAILED';
        const bad = nonFiniteWeight(base);
        const cause = bad ? `: the base model produced non-finite values (its weight ${bad} in ${cfg.baseModel} holds NaN or Inf); stopped.` : `; stopped. Last good checkpoint: ${checkpointsDir(outDir)}. Try a lower learning rate.`;
        finalMsg = `step ${step + 1}: ${Number.isFinite(trainLoss) ? `gradient norm is ${norm}` : `train loss is ${trainLoss}`} (non-finite)${cause}`;
        break;
      }
      adamwStep(params, g.grads, adam, lr, { ...ADAMW_DEFAULTS, weightDecay: cfg.optimizerWeightDecay });
      syncVars();
      st.step = step + 1;
      const inTok = rows.reduce((n, r) => n + r.inputIds.length, 0);
      st.inputTokens += inTok;
      st.outputTokens += g.tokens;
      job.jobProgress.totalProcessedRequests = job.jobProgress.successfullyProcessedRequests += rows.reduce((n, r) => n + r.examples.length, 0);
      const secs = (Date.now() - tStep) / 1000;
      const tps = inTok / Math.max(secs, 1e-6);
      record({ step: st.step, epoch: plan.epochProgress(st.step), train_loss: trainLoss, lr, grad_norm: norm, tokens_per_s: tps, tokens: g.tokens, time: new Date().toISOString() });

      // ---- eval (every N steps and at epoch ends), early stop, checkpoint ----
      const epochEnd = st.step === plan.epochStart[e + 1] || st.step === T;
      let stopEarly = false;
      if (evalBatches.length && (st.step % evalEvery === 0 || epochEnd)) {
        lastEval = evaluate();
        evalLosses.push(lastEval);
        record({ step: st.step, epoch: plan.epochProgress(st.step), eval_loss: lastEval, time: new Date().toISOString() });
        if (st.bestEvalLoss === null || lastEval < st.bestEvalLoss) {
          Object.assign(st, { bestEvalLoss: lastEval, bestStep: st.step, evalsWithoutImprovement: 0 });
          best = new Map([...params].map(([k, d]) => [k, d.slice()]));
        } else st.evalsWithoutImprovement++;
        stopEarly = cfg.earlyStop && st.evalsWithoutImprovement >= cfg.earlyStopPatience;
        progress.log(`step ${st.step}/${T}: eval loss ${lastEval.toFixed(4)}${st.evalsWithoutImprovement ? ` (best ${st.bestEvalLoss!.toFixed(4)} at step ${st.bestStep})` : ' (best)'}`);
      }
      progressOf(st.step);
      if (st.step % ckptEvery === 0 || epochEnd || stopEarly) checkpoint();
      const elapsed = (Date.now() - runStart) / 1000;
      progress.step({ step: st.step, total: T, epoch: plan.epochProgress(st.step), trainLoss, evalLoss: lastEval, tokensPerS: tps, secPerStep: elapsed / (st.step - startStep) }); // ETA from the steps this process ran
      if (Date.now() - lastJobWrite > 1000) {
        job.updateTime = new Date().toISOString();
        writeJob(job, outDir);
        lastJobWrite = Date.now();
      }
      if (stopEarly) {
        final = 'JOB_STATE_EARLY_STOPPED';
        finalMsg = `early stop at step ${st.step}/${T}: eval loss did not improve for ${cfg.earlyStopPatience} evaluations; kept the best adapter (eval loss ${st.bestEvalLoss!.toFixed(4)} at step ${st.bestStep})`;
        break;
      }
      testHook(`after-step-${st.step}`); // tests only: a signal to self after this step's checkpoint
      await testPause(`after-step-${st.step}`, outDir, () => stop.signal !== null);
      await yieldToSignals();
    }
  } catch (err) {
    progress.end();
    throw failedWhile(doing || `step ${st.step + 1}`, err);
  } finally {
    progress.end();
  }

  // ---- the adapter: with earlyStop the best-eval weights, else the last ones ----
  if (final === 'JOB_STATE_COMPLETED' || final === 'JOB_STATE_EARLY_STOPPED') {
    const useBest = cfg.earlyStop && best !== null;
    if (useBest) for (const [k, d] of best!) params.get(k)!.set(d);
    syncVars();
    try {
      saveAdapter(outDir, lora, lora.cfg, path.resolve(cfg.baseModel));
    } catch (err) {
      throw failedWhile('writing the adapter', err);
    }
    if (final === 'JOB_STATE_COMPLETED') {
      // One clock: training time summed over the runs of this job (what checkpoints record as elapsedS).
      finalMsg = `completed ${T} steps in ${(st.elapsedS + (Date.now() - runStart) / 1000).toFixed(1)} s of training${resumed ? ` (${(st.elapsedS).toFixed(1)} s before the resume at step ${startStep})` : ''}` + (lastEvalOf(evalLosses) !== null ? `; eval loss ${evalLosses[0].toFixed(4)} -> ${lastEvalOf(evalLosses)!.toFixed(4)}` : '') + (useBest ? ` (adapter from step ${st.bestStep}, best eval loss ${st.bestEvalLoss!.toFixed(4)})` : '');
      progressOf(T);
    }
  }
  setJobState(job, final, finalMsg, outDir);
  // Each final message already says how the job ended ('completed 52 steps ...', 'cancelled by SIGINT ...').
  log(`${finalMsg} (${final}; loading took ${((runStart - t0) / 1000).toFixed(1)} s)`);
  return { state: final, exitCode: EXIT[final] ?? 1, outDir, job, steps: st.step, evalLosses };
}

function lastEvalOf(xs: number[]): number | null {
  return xs.length ? xs[xs.length - 1] : null;
}

/** The config as recorded in resolved_config.json: input paths absolute, so the job resumes from any directory. */
function absolutePaths(cfg: TrainConfig): TrainConfig {
  const abs = (p: string) => (p ? path.resolve(p) : p);
  const template = cfg.jinjaTemplate && fs.existsSync(cfg.jinjaTemplate) ? path.resolve(cfg.jinjaTemplate) : cfg.jinjaTemplate;
  return { ...cfg, dataset: abs(cfg.dataset), baseModel: abs(cfg.baseModel), evaluationDataset: abs(cfg.evaluationDataset), warmStartFrom: abs(cfg.warmStartFrom), outputModel: abs(cfg.outputModel), jinjaTemplate: template };
}

/** The first base weight holding NaN or Inf, or null (checked only when a loss turned non-finite). */
function nonFiniteWeight(base: BaseModel): string | null {
  for (const [name, t] of base.weights) {
    const d = t.dataSync();
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return name;
  }
  return null;
}
