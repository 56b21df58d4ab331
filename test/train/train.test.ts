import { randomLora } from '../helpers/index.ts';
import { describe, expect, it, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { train, modelLoss, type TrainLoss } from '../../src/train/train.ts';
import { readMetrics, type EvalRow, type TrainRow } from '../../src/train/metrics.ts';
import { readJob, setJobState } from '../../src/train/job.ts';
import { listCheckpoints, loadCheckpoint } from '../../src/train/checkpoint.ts';
import { loadAdapter } from '../../src/model/peft.ts';
import { loadBaseModel, forwardLogits } from '../../src/model/model.ts';
import { loraFromTensors, DEFAULT_LORA_TARGETS } from '../../src/model/lora.ts';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors.ts';
import { accumulateStep, rowsToBatch } from '../../src/train/step.ts';
import { packExamples } from '../../src/data/pack.ts';
import { loadChatTokenizer } from '../../src/data/tokenizer.ts';
import { loadDataset } from '../../src/data/validate.ts';
import { buildExamples } from '../../src/data/pipeline.ts';
import { initBackend } from '../../src/backend/index.ts';
import { fixtureConfig, makeFixture, type Fixture } from './fixture.ts';

const quiet = {
  log: () => {},
  handleSignals: false,
  progressOut: { write: () => true } as unknown as NodeJS.WriteStream,
};
let fx: Fixture;
beforeAll(() => {
  fx = makeFixture();
});

/** The fixture model with a rank-4 LoRA (B random, so gradients reach A too) and its training rows packed at 64 tokens. */
async function modelAndRows(loraSeed: number, bSeed: number) {
  await initBackend({});
  const base = await loadBaseModel(fx.model);
  const lora = randomLora(base, loraSeed, 0.1, bSeed);
  const tok = await loadChatTokenizer(fx.model);
  const ex = buildExamples(loadDataset(fx.train), tok, { maxContextLength: 64 }).examples;
  return { base, lora, rows: packExamples(ex, { batchSize: 64, seed: 1 }) };
}

describe('train() end to end on a tiny Qwen3 model', () => {
  it('a resumed run says where it resumes, and its ETA comes from the steps it ran', async () => {
    const cfg = fixtureConfig(fx, 'resumed', {
      maxSteps: 4,
      checkpointEverySteps: 1,
      keepCheckpoints: 10,
      evalEverySteps: 4,
    });
    expect((await train(cfg, quiet)).exitCode).toBe(0);
    const out = path.join(fx.root, 'resumed');
    const progress = readJob(out).jobProgress; // the uninterrupted run's
    for (const d of ['step-000003', 'step-000004']) fs.rmSync(path.join(out, 'checkpoints', d), { recursive: true }); // as if killed after step 2
    fs.mkdirSync(path.join(out, 'checkpoints', '.tmp-step-000003-999999999')); // killed while writing step 3
    const logs: string[] = [];
    const lines: string[] = [];
    const r = await train(cfg, {
      resume: true,
      handleSignals: false,
      log: (m) => logs.push(m),
      progressOut: { write: (l: string) => lines.push(l) } as unknown as NodeJS.WriteStream,
    });
    expect(r.exitCode).toBe(0);
    expect(logs, logs.join('\n')).toContain(
      `resuming from checkpoint step 2 of 4 (epoch 0.33): ${path.join(out, 'checkpoints', 'step-000002')}`,
    );
    const steps = lines.filter((l) => /^step \d+\/4 /.test(l));
    expect(steps.map((l) => l.split(' ')[1])).toEqual(['3/4', '4/4']);
    for (const l of steps) expect(l).toMatch(/ETA \d+s\n$/);
    expect(logs.at(-1)).toMatch(/^completed 4 steps in [\d.]+ s of training \([\d.]+ s before the resume at step 2\)/);
    // job.json's request counters were last written after step 4: the resume counts from the checkpoint's step.
    expect(readJob(out).jobProgress).toEqual(progress);
    expect(fs.readdirSync(path.join(out, 'checkpoints'))).toEqual([
      'step-000001',
      'step-000002',
      'step-000003',
      'step-000004',
    ]);
  });

  it('records the backend that actually ran: resolved_config.json, job.json local.backend, the first metrics row', async () => {
    // --backend tensorflow without @tensorflow/tfjs-node installed falls back: the record says what ran.
    const r = await train(
      fixtureConfig(fx, 'backend', { backend: 'tensorflow', maxSteps: 2, evalEverySteps: 1 }),
      quiet,
    );
    expect(r.exitCode).toBe(0);
    const out = path.join(fx.root, 'backend');
    const used = JSON.parse(fs.readFileSync(path.join(out, 'resolved_config.json'), 'utf8')).backendUsed;
    expect(used.name).toBe(tf.getBackend());
    expect(used.name).not.toBe('tensorflow');
    expect(used).toMatchObject({
      requested: 'tensorflow',
      library: expect.stringMatching(/OpenBLAS|tfjs-backend-cpu/),
    });
    expect(used.threads).toBeGreaterThanOrEqual(1);
    expect((readJob(out).local as { backend: unknown }).backend).toEqual(used);
    const rows = readMetrics(out);
    expect(rows[0].backend).toEqual(used);
    expect(rows.slice(1).some((x) => 'backend' in x)).toBe(false);
  });

  it('runs a job: pinned first losses, loss falls, PEFT adapter, job.json, metrics', async () => {
    const cfg = fixtureConfig(fx, 'e2e', { epochs: 2 });
    const logs: string[] = [];
    const r = await train(cfg, { ...quiet, log: (m) => logs.push(m) });
    expect(r.state).toBe('JOB_STATE_COMPLETED');
    expect(r.exitCode).toBe(0);
    const rows = readMetrics(cfg.outputModel);
    const tr = rows.filter((x): x is TrainRow => 'train_loss' in x);
    const ev = rows.filter((x): x is EvalRow => 'eval_loss' in x);
    console.log(
      'train losses',
      tr.map((x) => x.train_loss.toFixed(5)).join(' '),
      '| eval',
      ev.map((x) => x.eval_loss.toFixed(5)).join(' '),
    );
    // Pinned on the first run (tiny model seed 7, data seed 3); any change to data order, init, loss or AdamW moves them.
    expect(tr.slice(0, 3).map((x) => x.train_loss)).toEqual(PINNED.map((v) => expect.closeTo(v, 3)));
    expect(tr.length).toBe(r.steps);
    expect(tr[tr.length - 1].train_loss).toBeLessThan(tr[0].train_loss - 0.5);
    expect(ev[ev.length - 1].eval_loss).toBeLessThan(ev[0].eval_loss - 0.5);
    expect(ev[0].step).toBe(0);

    const job = readJob(cfg.outputModel);
    expect(job).toMatchObject({
      name: 'accounts/local/supervisedFineTuningJobs/e2e',
      state: 'JOB_STATE_COMPLETED',
      epochs: 2,
      loraRank: 8,
      learningRate: 1e-2,
    });
    expect(job.jobProgress.percent).toBe(100);
    expect(job.jobProgress.epoch).toBe(2);
    expect(job.jobProgress.outputTokens).toBeGreaterThan(0);
    // An ISO time, no earlier than the job's creation, written with the final state (so equal to updateTime).
    expect(job.completedTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(job.completedTime!)).toBeGreaterThanOrEqual(Date.parse(job.createTime));
    expect(job.completedTime).toBe(job.updateTime);
    expect(job.status.message).toMatch(/^completed \d+ steps in [\d.]+ s of training; eval loss [\d.]+ -> [\d.]+$/);
    // The last log line says how the job ended once (it printed 'completed: completed 10 steps').
    expect(logs.at(-1)).toMatch(/^completed \d+ steps in .* \(JOB_STATE_COMPLETED; loading took [\d.]+ s\)$/);
    expect(logs.at(-1)).not.toMatch(/^(\w+):? \1\b/i);
    const ac = JSON.parse(fs.readFileSync(path.join(cfg.outputModel, 'adapter_config.json'), 'utf8'));
    expect(ac).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 8,
      lora_alpha: 16,
      base_model_name_or_path: fx.model,
    });
    expect(ac.target_modules).toEqual(DEFAULT_LORA_TARGETS);
    const { backendUsed, ...resolved } = JSON.parse(
      fs.readFileSync(path.join(cfg.outputModel, 'resolved_config.json'), 'utf8'),
    );
    expect(resolved).toEqual({ ...cfg, precision: 'fp32' }); // auto resolved (F32 checkpoint)
    expect(backendUsed.name).toBe(tf.getBackend());

    // Adapter round trip: the exported adapter reloads to the final checkpoint's weights and identical logits.
    const base = await loadBaseModel(fx.model);
    const a = loadAdapter(cfg.outputModel);
    const fromAdapter = loraFromTensors(base, a.lora, a.cfg, 'adapter');
    const ck = loadCheckpoint(listCheckpoints(cfg.outputModel).at(-1)!);
    const fromCkpt = loraFromTensors(base, ck.params, a.cfg, 'checkpoint');
    const ids = Int32Array.from([151644, 872, 198, 3838, 374, 279, 6722, 315, 9625, 30]);
    const l1 = forwardLogits(base, fromAdapter, ids).dataSync();
    const l2 = forwardLogits(base, fromCkpt, ids).dataSync();
    const l0 = forwardLogits(base, null, ids).dataSync();
    expect(Buffer.from(l1.buffer).equals(Buffer.from(l2.buffer))).toBe(true);
    let diff = 0;
    for (let i = 0; i < l0.length; i++) diff = Math.max(diff, Math.abs(l0[i] - l1[i]));
    expect(diff).toBeGreaterThan(1e-2); // training changed the model
  });

  it('checkpointActivations on/off/auto give identical loss and gradients', async () => {
    const { base, lora, rows } = await modelAndRows(2, 6);
    const batch = rowsToBatch(rows.slice(0, 1));
    const [on, off, auto] = (['on', 'off', 'auto'] as const).map((m) => modelLoss(m).withGrads(base, lora, batch, 0));
    expect(on.grads.size).toBe(2 * 7 * base.config.numLayers);
    for (const r of [off, auto]) {
      expect(r.lossSum).toBe(on.lossSum);
      expect(r.grads.size).toBe(on.grads.size);
      for (const [k, g] of on.grads) expect(Array.from(r.grads.get(k)!.dataSync())).toEqual(Array.from(g.dataSync()));
    }
  });

  it('gradient accumulation over two rows equals one batch of both rows (real model)', async () => {
    const { base, lora, rows: all } = await modelAndRows(1, 5);
    const rows = all.slice(0, 2);
    expect(rows[0].inputIds.length).not.toBe(rows[1].inputIds.length);
    const fn = (b: ReturnType<typeof rowsToBatch>) => modelLoss().withGrads(base, lora, b, 0);
    const ga = accumulateStep([rowsToBatch([rows[0]]), rowsToBatch([rows[1]])], fn);
    const one = accumulateStep([rowsToBatch(rows)], fn);
    expect(ga.tokens).toBe(one.tokens);
    expect(Math.abs(ga.lossSum - one.lossSum) / one.lossSum).toBeLessThan(1e-6);
    let maxdiff = 0;
    let maxabs = 0;
    for (const [k, g] of one.grads) {
      const h = ga.grads.get(k)!;
      for (let i = 0; i < g.length; i++) {
        maxdiff = Math.max(maxdiff, Math.abs(g[i] - h[i]));
        maxabs = Math.max(maxabs, Math.abs(g[i]));
      }
    }
    console.log(`GA vs one batch: maxdiff ${maxdiff.toExponential(2)} (max |g| ${maxabs.toExponential(2)})`);
    expect(maxabs).toBeGreaterThan(1e-4);
    expect(maxdiff).toBeLessThan(1e-6);
  });

  it('early stop: keeps the best adapter and ends EARLY_STOPPED', async () => {
    // Scripted eval losses (batch size 256: the 3 eval examples make one eval batch): step 0 -> 5, step 1 -> 4 (best), then worse: stop after 2 more.
    const script = [5, 4, 4.5, 4.6, 4.7, 4.8, 4.9];
    let calls = 0;
    const loss: TrainLoss = {
      withGrads: modelLoss().withGrads,
      value: (b, l, batch) => script[calls++] * batch.weights.filter((w) => w !== 0).length,
    };
    const cfg = fixtureConfig(fx, 'early', {
      earlyStop: true,
      earlyStopPatience: 2,
      evalEverySteps: 1,
      checkpointEverySteps: 1,
      keepCheckpoints: 10,
      epochs: 3,
      batchSize: 256,
    });
    const r = await train(cfg, { ...quiet, loss });
    expect(r.state).toBe('JOB_STATE_EARLY_STOPPED');
    expect(r.steps).toBe(3);
    expect(r.evalLosses).toEqual([5, 4, 4.5, 4.6]);
    const job = readJob(cfg.outputModel);
    expect(job.status.message).toMatch(/early stop at step 3\/\d+.*step 1/);
    const adapter = readSafetensors(path.join(cfg.outputModel, 'adapter_model.safetensors'));
    const atBest = loadCheckpoint(path.join(cfg.outputModel, 'checkpoints', 'step-000001')).params;
    const last = loadCheckpoint(path.join(cfg.outputModel, 'checkpoints', 'step-000003')).params;
    for (const [k, t] of adapter) expect([...t.data]).toEqual([...atBest.get(k)!.data]);
    const someB = [...last.keys()].find((k) => k.includes('lora_B'))!;
    expect([...last.get(someB)!.data]).not.toEqual([...atBest.get(someB)!.data]);

    // Stopped after the early-stop checkpoint, before the adapter was written (SIGKILL, full disk): the resume
    // stops there too, with the same adapter and metrics (it trained on past the early stop).
    const rows = fs.readFileSync(path.join(cfg.outputModel, 'metrics.jsonl'), 'utf8');
    const bytes = fs.readFileSync(path.join(cfg.outputModel, 'adapter_model.safetensors'));
    fs.rmSync(path.join(cfg.outputModel, 'adapter_model.safetensors'));
    const message = job.status.message;
    setJobState(job, 'JOB_STATE_RUNNING', 'training', cfg.outputModel);
    const again = await train(cfg, { ...quiet, loss, resume: true });
    expect(again.state).toBe('JOB_STATE_EARLY_STOPPED');
    expect(again.steps).toBe(3);
    expect(readJob(cfg.outputModel).status.message).toBe(message);
    expect(fs.readFileSync(path.join(cfg.outputModel, 'metrics.jsonl'), 'utf8')).toBe(rows);
    expect(fs.readFileSync(path.join(cfg.outputModel, 'adapter_model.safetensors')).equals(bytes)).toBe(true);
  });

  it('a non-finite loss stops the job: FAILED with the step, last good checkpoint kept', async () => {
    let calls = 0;
    const loss: TrainLoss = {
      withGrads: (b, l, batch, seed) => {
        const r = modelLoss().withGrads(b, l, batch, seed);
        return ++calls === 3 ? { ...r, lossSum: NaN } : r;
      },
      value: modelLoss().value,
    };
    const cfg = fixtureConfig(fx, 'nan', { checkpointEverySteps: 1 });
    const r = await train(cfg, { ...quiet, loss });
    expect(r.state).toBe('JOB_STATE_FAILED');
    expect(r.exitCode).toBe(1);
    const job = readJob(cfg.outputModel);
    expect(job.status.message).toMatch(/^step 3: train loss is NaN/);
    expect(job.status.code).toBe('INTERNAL');
    expect(
      listCheckpoints(cfg.outputModel)
        .map((d) => path.basename(d))
        .at(-1),
    ).toBe('step-000002');
    expect(fs.existsSync(path.join(cfg.outputModel, 'adapter_model.safetensors'))).toBe(false);
  });

  it('a warmup longer than the run is a warning', async () => {
    const logs: string[] = [];
    const r = await train(fixtureConfig(fx, 'warm', { learningRateWarmupSteps: 100, maxSteps: 1 }), {
      ...quiet,
      log: (m) => logs.push(m),
    });
    expect(r.state).toBe('JOB_STATE_COMPLETED');
    expect(logs).toContain(
      'warning: learningRateWarmupSteps 100 is longer than the run (1 step): the learning rate peaks at 0.000100, not 0.01',
    );
  });

  it.each([
    ['fp32', 'F32'],
    ['bf16', 'BF16'],
  ] as const)(
    'a base model with NaN weights fails saying so (not "try a lower learning rate"), %s',
    async (p, dtype) => {
      const model = path.join(fx.root, `nan-model-${p}`);
      fs.cpSync(fx.model, model, { recursive: true });
      const w = readSafetensors(path.join(model, 'model.safetensors'));
      const name = 'model.layers.0.mlp.up_proj.weight';
      w.get(name)!.data[3] = NaN;
      writeSafetensors(
        path.join(model, 'model.safetensors'),
        new Map([...w].map(([k, t]) => [k, { shape: t.shape, data: t.data }])),
        undefined,
        { dtype },
      );
      const r = await train(fixtureConfig(fx, `nan-base-${p}`, { baseModel: model, maxSteps: 2, precision: p }), quiet);
      expect(r.state).toBe('JOB_STATE_FAILED');
      expect(readJob(r.outDir).status.message).toBe(
        `step 1: train loss is NaN (non-finite): the base model produced non-finite values (its weight ${name} in ${model} holds NaN or Inf); stopped.`,
      );
    },
  );
});

const PINNED = [12.96655, 12.27869, 12.13466];
