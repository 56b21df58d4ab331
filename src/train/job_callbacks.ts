// The training loop's callbacks for a job (train.ts wires them): metrics.jsonl, eval lines, the progress bar,
// job.json, checkpoints, and what happens between steps (signals, test hooks). The loop itself writes no file.
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { saveAdapter } from '../model/peft.ts';
import type { FloatTensor } from '../model/safetensors.ts';
import type { Progress } from '../report/progress.ts';
import { fsErrorToUser } from '../util/paths.ts';
import { testHook, testPause } from '../util/testhooks.ts';
import { abs, lorasftCommand } from '../util/invocation.ts';
import type { TrainConfig } from './config.ts';
import { saveCheckpoint, type TrainerState } from './checkpoint.ts';
import { setJobState, writeJob, type Job } from './job.ts';
import type { BackendUsed, MetricsRow } from './metrics.ts';
import type { StepPlan } from './plan.ts';
import { yieldToSignals, type Resumed } from './load.ts';
import type { Loop, LoopCallbacks } from './loop.ts';

/**
 * Set by SIGINT/SIGTERM; the loop checks it between steps. `force(msg)` records CANCELLED before exiting at once:
 * on a second signal, or on the first one while the job is still loading (nothing to checkpoint yet).
 */
export interface StopFlag {
  signal: string | null;
  loading: boolean;
  force?: (why: string) => void;
}

/** One job run by this process: its config, job.json, the checkpoint it resumed from, and where lines go. */
export interface JobRun {
  cfg: TrainConfig;
  outDir: string;
  job: Job;
  resumed: Resumed;
  log: (msg: string) => void;
  /** The backend that runs the job, once initialised. */
  backendUsed?: BackendUsed;
  /** The step this process began at (the checkpoint's state object is the loop's, and moves on). */
  startStep: number;
  /** When loading began and when the loop's run began (ms). */
  t0: number;
  runStart: number;
}

/** The loop's inputs before the job wires its callbacks. */
export type LoopParts = Omit<Loop, 'on'>;

/** What the job's callbacks write to: metrics rows, the progress bar, the job's eval losses, the stop flag. */
export interface JobOutputs {
  record: (row: MetricsRow) => void;
  progress: Progress;
  evalLosses: number[];
  stop: StopFlag;
}

/** The loop's callbacks for a job: metrics rows, eval lines, the progress bar, job.json (at most once a second),
 *  checkpoints, and signals and test hooks between steps. */
export function jobCallbacks(j: JobRun, parts: LoopParts, out: JobOutputs): LoopCallbacks {
  const { outDir, job, log, startStep } = j;
  const { plan, run } = parts;
  const { record, progress, evalLosses, stop } = out;
  const st = run.st;
  const total = plan.totalSteps;
  let lastEval: number | null = st.bestEvalLoss;
  let lastJobWrite = 0;
  return {
    onStep: (r) => {
      job.jobProgress.totalProcessedRequests = job.jobProgress.successfullyProcessedRequests += r.examples;
      record({
        step: r.step,
        epoch: plan.epochProgress(r.step),
        train_loss: r.trainLoss,
        lr: r.lr,
        grad_norm: r.gradNorm,
        tokens_per_s: r.inputTokens / Math.max(r.seconds, 1e-6),
        tokens: r.tokens,
        time: new Date().toISOString(),
      });
    },
    onEval: (step, v) => {
      lastEval = v;
      evalLosses.push(v);
      record({ step, epoch: plan.epochProgress(step), eval_loss: v, time: new Date().toISOString() });
      if (step === 0) log(`step 0: eval loss ${v.toFixed(4)}`);
      else
        progress.log(
          `step ${step}/${total}: eval loss ${v.toFixed(4)}${st.evalsWithoutImprovement ? ` (best ${st.bestEvalLoss!.toFixed(4)} at step ${st.bestStep})` : ' (best)'}`,
        );
    },
    onStepEnd: (r) => {
      setProgress(job, plan, st, r.step);
      const elapsed = (Date.now() - j.runStart) / 1000;
      progress.step({
        step: r.step,
        total: total,
        epoch: plan.epochProgress(r.step),
        trainLoss: r.trainLoss,
        evalLoss: lastEval,
        tokensPerS: r.inputTokens / Math.max(r.seconds, 1e-6),
        secPerStep: elapsed / (r.step - startStep),
      }); // ETA from the steps this process ran
      if (Date.now() - lastJobWrite > 1000) {
        job.updateTime = new Date().toISOString();
        writeJob(job, outDir);
        lastJobWrite = Date.now();
      }
    },
    checkpoint: () => {
      run.doing = `checkpoint of step ${st.step}`;
      saveCheckpointOf(j, parts);
    },
    between: async (step) => {
      testHook(`after-step-${step}`, j.cfg.jobId); // tests only: a signal to self after this step's checkpoint
      await testPause(`after-step-${step}`, j.cfg.jobId, outDir, () => stop.signal !== null);
      await yieldToSignals();
      return stop.signal;
    },
  };
}

function saveCheckpointOf(j: JobRun, { run, lora }: LoopParts): void {
  const withShapes = (m: Map<string, Float32Array>) =>
    new Map<string, FloatTensor>([...m].map(([k, d]) => [k, { shape: lora.get(k)!.shape, data: d }]));
  const state = { ...run.st, elapsedS: run.st.elapsedS + (Date.now() - j.runStart) / 1000 };
  const ck = { state, params: withShapes(run.params), adam: run.adam, best: run.best && withShapes(run.best) };
  saveCheckpoint(
    j.outDir,
    ck,
    (dir) => saveAdapter(dir, lora, lora.cfg, path.resolve(j.cfg.baseModel)),
    j.cfg.keepCheckpoints,
  );
}

/**
 * The job's progress at `done` steps, as the uninterrupted run has it there: a resumed job.json holds the counters
 * of its last write, which may be from steps after its checkpoint (it is written at most once a second).
 */
export function restoreProgress(job: Job, plan: StepPlan, st: TrainerState, done: number): void {
  let examples = 0;
  for (let step = 0; step < done; step++) for (const r of plan.stepRows(step)) examples += r.examples.length;
  job.jobProgress.totalProcessedRequests = job.jobProgress.successfullyProcessedRequests = examples;
  setProgress(job, plan, st, done);
}

export function setProgress(job: Job, plan: StepPlan, st: TrainerState, done: number): void {
  Object.assign(job.jobProgress, {
    percent: Math.round((1000 * done) / plan.totalSteps) / 10,
    epoch: Number(plan.epochProgress(done).toFixed(4)),
    inputTokens: st.inputTokens,
    outputTokens: st.outputTokens,
  });
}

/** Records FAILED for an error thrown while `what` ('step 4'); returns it, an fs error as a line naming its path. */
export function failedWhile(j: JobRun, what: string, err: unknown): unknown {
  const e = fsErrorToUser(err); // a failed write (disk full) names its path
  const user = e instanceof UserError;
  const fsError = e !== err;
  const msg = `${what}: ${user ? '' : 'internal error: '}${(e as Error).message}${fsError ? `; once it can be written, resume with: ${resumeCommand(j.outDir)}` : ''}`;
  try {
    setJobState(j.job, 'JOB_STATE_FAILED', msg, j.outDir, { code: user && !fsError ? 'INVALID_ARGUMENT' : 'INTERNAL' });
  } catch (w) {
    j.log(
      `warning: could not record the failure in ${path.join(j.outDir, 'job.json')}: ${(fsErrorToUser(w) as Error).message}`,
    );
  }
  return e;
}

export const resumeCommand = (outDir: string) => lorasftCommand('train', '--resume', abs(outDir));
