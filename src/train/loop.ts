// The training loop in nanoGPT order: (stop?) -> micro-batches -> loss and gradients -> clip -> AdamW -> eval and
// keep the best -> checkpoint. The job shell (train.ts) owns job.json, metrics and the progress bar; the loop
// reports to it through the callbacks of LoopCallbacks and never writes a file itself.
import * as tf from '@tensorflow/tfjs-core';
import { lossAndGrads, lossSum, type BaseModel, type Batch } from '../model/model.ts';
import type { LoraWeights } from '../model/lora.ts';
import type { TrainConfig } from './config.ts';
import type { TrainerState } from './checkpoint.ts';
import { ADAMW_DEFAULTS, adamwStep, clipGradNorm, type AdamWState } from './optimizer.ts';
import type { StepPlan } from './plan.ts';
import { deriveSeed, STREAM } from '../util/random.ts';
import { learningRateAt } from './schedule.ts';
import { isBf16 } from '../ops/matmul_bf16.ts';
import { accumulateStep, rowsToBatch, trainedTokens, type MicroResult } from './step.ts';

/** The loss, as a parameter of train(): gradients of the unnormalised sum for training, the sum for eval. */
export interface TrainLoss {
  withGrads(base: BaseModel, lora: LoraWeights, batch: Batch, dropoutSeed: number): MicroResult;
  value(base: BaseModel, lora: LoraWeights, batch: Batch): number;
}

/** The model's own loss; `checkpoint` is the activation-checkpointing mode (config checkpointActivations). */
export function modelLoss(checkpoint: TrainConfig['checkpointActivations'] = 'auto'): TrainLoss {
  const mode = checkpoint === 'auto' ? 'auto' : checkpoint === 'on';
  return {
    withGrads: (base, lora, batch, dropoutSeed) => lossAndGrads(base, lora, batch, { dropoutSeed, checkpoint: mode }),
    value: (base, lora, batch) => {
      const { loss } = lossSum(base, lora, batch, { forBackward: false }); // eval: no gradient work
      const v = loss.dataSync()[0];
      loss.dispose();
      return v;
    },
  };
}

/**
 * What the loop updates and a checkpoint holds. `params` is the float32 master copy of the LoRA weights, kept
 * outside tf and copied into the tf variables after every step: AdamW updates it in float64 arithmetic rounded to
 * float32 (optimizer.ts), and a checkpoint saves exactly these arrays, so a resumed run continues from the same
 * bits and ends with the same adapter bytes as an uninterrupted one.
 */
export interface LoopState {
  params: Map<string, Float32Array>;
  adam: AdamWState;
  st: TrainerState;
  /** The parameters at the best eval loss so far (earlyStop keeps them). */
  best: Map<string, Float32Array> | null;
  /** What the loop is doing, for a failure message ('step 4', 'checkpoint of step 3'). */
  doing: string;
}

/** A finished optimizer step, for the metrics row, the progress bar and job.json. */
interface StepReport {
  step: number;
  lr: number;
  trainLoss: number;
  gradNorm: number;
  /** Trained tokens (w != 0) and all input tokens of the step. */
  tokens: number;
  inputTokens: number;
  examples: number;
  seconds: number;
}

export interface LoopCallbacks {
  onStep(r: StepReport): void;
  onEval(step: number, evalLoss: number): void;
  /** After the step's eval and checkpoint: progress bar and job.json. */
  onStepEnd(r: StepReport): void;
  checkpoint(): void;
  /** Between steps: let signals and test hooks run; the signal that asks to stop, or null. */
  between(step: number): Promise<string | null>;
}

export type LoopEnd =
  | { kind: 'completed' }
  | { kind: 'cancelled'; signal: string }
  | { kind: 'early-stopped' }
  | { kind: 'non-finite'; step: number; trainLoss: number; gradNorm: number; badWeight: string | null };

export interface Loop {
  cfg: TrainConfig;
  plan: StepPlan;
  loss: TrainLoss;
  base: BaseModel;
  lora: LoraWeights;
  evalBatches: Batch[];
  run: LoopState;
  on: LoopCallbacks;
}

/** Mean eval loss per trained token over all eval batches. */
function evaluate(loss: TrainLoss, base: BaseModel, lora: LoraWeights, batches: Batch[]): number {
  let sum = 0;
  let n = 0;
  for (const b of batches) {
    sum += loss.value(base, lora, b);
    n += trainedTokens(b);
  }
  return sum / n;
}

/** Copy the master parameters into the model's tf variables. */
export function syncVars(lora: LoraWeights, params: Map<string, Float32Array>): void {
  for (const [k, v] of lora) {
    const t = tf.tensor(params.get(k)!, v.shape);
    v.assign(t);
    t.dispose();
  }
}

/** Evaluate, keep the best parameters, count evals without improvement; true when early stop should fire. */
export function evaluateAndTrack(x: Loop): boolean {
  const { run, cfg } = x;
  const st = run.st;
  const v = evaluate(x.loss, x.base, x.lora, x.evalBatches);
  if (st.bestEvalLoss === null || v < st.bestEvalLoss) {
    Object.assign(st, { bestEvalLoss: v, bestStep: st.step, evalsWithoutImprovement: 0 });
    run.best = new Map([...run.params].map(([k, d]) => [k, d.slice()]));
  } else st.evalsWithoutImprovement++;
  x.on.onEval(st.step, v);
  return cfg.earlyStop && st.evalsWithoutImprovement >= cfg.earlyStopPatience;
}

/** Run steps from run.st.step to the plan's end, a stop signal, early stop or a non-finite loss. */
export async function trainLoop(x: Loop): Promise<LoopEnd> {
  const { cfg, plan, loss, base, lora, run, on } = x;
  const st = run.st;
  const total = plan.totalSteps;
  const evalEvery = cfg.evalEverySteps || Math.max(1, Math.round(total / 10));
  const ckptEvery = cfg.checkpointEverySteps || evalEvery;
  const schedule = {
    learningRate: cfg.learningRate,
    warmupSteps: cfg.learningRateWarmupSteps,
    totalSteps: total,
    scheduler: cfg.lrScheduler,
  };
  // A checkpoint written as early stop fired (the job was stopped before its adapter was saved): stop again.
  if (cfg.earlyStop && x.evalBatches.length > 0 && st.evalsWithoutImprovement >= cfg.earlyStopPatience)
    return { kind: 'early-stopped' };
  while (st.step < total) {
    const step = st.step; // 0-based index of the step being taken
    run.doing = `step ${step + 1}`;
    const t0 = Date.now();
    const rows = plan.stepRows(step);
    const lr = learningRateAt(step, schedule);
    const micro = rows.map((r) => rowsToBatch([r]));
    const g = accumulateStep(micro, (b, i) =>
      loss.withGrads(base, lora, b, deriveSeed(cfg.seed, STREAM.dropout, step, i)),
    );
    const trainLoss = g.lossSum / g.tokens;
    const gradNorm = clipGradNorm(g.grads, cfg.maxGradNorm, Math.sqrt(g.sumSquares));
    if (!Number.isFinite(trainLoss) || !Number.isFinite(gradNorm)) {
      on.checkpoint(); // the parameters before this step: the last good state
      return { kind: 'non-finite', step: step + 1, trainLoss, gradNorm, badWeight: nonFiniteWeight(base) };
    }
    adamwStep(run.params, g.grads, run.adam, lr, { ...ADAMW_DEFAULTS, weightDecay: cfg.optimizerWeightDecay });
    syncVars(lora, run.params);
    st.step = step + 1;
    const inputTokens = rows.reduce((n, r) => n + r.inputIds.length, 0);
    st.inputTokens += inputTokens;
    st.outputTokens += g.tokens;
    const examples = rows.reduce((n, r) => n + r.examples.length, 0);
    const report: StepReport = {
      step: st.step,
      lr,
      trainLoss,
      gradNorm,
      tokens: g.tokens,
      inputTokens,
      examples,
      seconds: (Date.now() - t0) / 1000,
    };
    on.onStep(report);

    // eval every N steps and at epoch ends; checkpoint every M steps, at epoch ends and before an early stop
    const epochEnd = st.step === plan.epochStart[plan.epochOf(step) + 1] || st.step === total;
    const stopEarly = x.evalBatches.length > 0 && (st.step % evalEvery === 0 || epochEnd) && evaluateAndTrack(x);
    if (st.step % ckptEvery === 0 || epochEnd || stopEarly) on.checkpoint();
    on.onStepEnd(report);
    if (stopEarly) return { kind: 'early-stopped' };
    const signal = await on.between(st.step); // a signal after the last step changes nothing
    if (signal && st.step < total) {
      on.checkpoint();
      return { kind: 'cancelled', signal };
    }
  }
  return { kind: 'completed' };
}

/** The first base weight holding NaN or Inf, or null (checked only when a loss turned non-finite). */
function nonFiniteWeight(base: BaseModel): string | null {
  for (const [name, t] of base.weights) if (holdsNonFinite(t)) return name;
  return null;
}

/** NaN or Inf in one weight, read tensor by tensor; a packed bf16 weight (int32 = two bf16) is read as bf16 bits. */
function holdsNonFinite(t: tf.Tensor): boolean {
  const d = t.dataSync();
  if (!isBf16(t)) return d.some((x) => !Number.isFinite(x));
  const bits = new Uint16Array(d.buffer, d.byteOffset, d.length * 2);
  return bits.some((h) => (h & 0x7f80) === 0x7f80); // bf16 exponent all ones: Inf or NaN
}
