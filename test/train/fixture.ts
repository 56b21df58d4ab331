// Shared fixture for the training tests: a tiny random Qwen3-architecture model with the real Qwen3 tokenizer
// and small slices of the bundled demo dataset. Cost is dominated by (trained tokens x 151k vocab).
import { randomLora, tmpDir } from '../helpers/index.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel } from '../../src/model/tiny.ts';
import { initBackend } from '../../src/backend/index.ts';
import { loadBaseModel } from '../../src/model/model.ts';
import { saveAdapter } from '../../src/model/peft.ts';
import { DEMO_DATASET } from '../../src/train/demo.ts';
import { resolveConfig, type TrainConfig } from '../../src/train/config.ts';

export interface Fixture {
  root: string;
  model: string;
  train: string;
  eval: string;
}

export function makeFixture(nTrain = 12, nEval = 3): Fixture {
  const root = tmpDir('train');
  const model = path.join(root, 'model');
  makeTinyModel({
    family: 'qwen3',
    out: model,
    tokenizer: 'qwen3',
    hidden: 32,
    layers: 1,
    heads: 2,
    kvHeads: 1,
    intermediate: 32,
    seed: 7,
    std: 0.25,
  });
  const lines = fs.readFileSync(DEMO_DATASET, 'utf8').trim().split('\n');
  const train = path.join(root, 'train.jsonl');
  const evalFile = path.join(root, 'eval.jsonl');
  fs.writeFileSync(train, lines.slice(0, nTrain).join('\n') + '\n');
  fs.writeFileSync(evalFile, lines.slice(200, 200 + nEval).join('\n') + '\n');
  return { root, model, train, eval: evalFile };
}

/** A small, fast job on the fixture (about 5 optimizer steps per epoch). */
export function fixtureConfig(fx: Fixture, out: string, over: Partial<TrainConfig> = {}): TrainConfig {
  return resolveConfig({
    baseModel: fx.model,
    dataset: fx.train,
    evaluationDataset: fx.eval,
    outputModel: path.join(fx.root, out),
    jobId: out,
    batchSize: 64,
    learningRate: 1e-2,
    epochs: 1,
    evalEverySteps: 2,
    seed: 3,
    ...over,
  });
}

/** The same job as CLI flags. */
export function fixtureFlags(fx: Fixture, out: string, extra: string[] = []): string[] {
  return [
    '--base-model',
    fx.model,
    '--dataset',
    fx.train,
    '--evaluation-dataset',
    fx.eval,
    '--output-model',
    path.join(fx.root, out),
    '--job-id',
    out,
    '--batch-size',
    '64',
    '--learning-rate',
    '1e-2',
    '--eval-every-steps',
    '2',
    '--seed',
    '3',
    ...extra,
  ];
}

/** FIXTURE/NAME: a random rank-4 adapter on the fixture model (seed picks A and B; B is non-zero, so it changes the logits). */
export async function randomAdapter(fx: Fixture, name: string, seed: number): Promise<string> {
  await initBackend({});
  const base = await loadBaseModel(fx.model);
  const lora = randomLora(base, seed, 0.5, seed + 7);
  const dir = path.join(fx.root, name);
  saveAdapter(dir, lora, lora.cfg, fx.model);
  lora.dispose();
  return dir;
}
