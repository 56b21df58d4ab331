// Inference fixture: the training tests' tiny Qwen3 model (real Qwen3 tokenizer) and random adapters with
// non-zero B (so each one changes the logits differently).
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.ts';
import { loadBaseModel } from '../../src/model/model.ts';
import { DEFAULT_LORA_TARGETS, initLora } from '../../src/model/lora.ts';
import { saveAdapter } from '../../src/model/peft.ts';
import { makeFixture, type Fixture } from '../train/fixture.ts';

export interface InferFixture extends Fixture {
  /** Two random adapter dirs on the model. */
  adapters: [string, string];
}

/** FIXTURE/NAME: a random rank-4 adapter (seed picks A and B). */
export async function randomAdapter(fx: Fixture, name: string, seed: number): Promise<string> {
  await initBackend({});
  const base = await loadBaseModel(fx.model);
  const lora = initLora(base, { rank: 4, alpha: 8, targets: DEFAULT_LORA_TARGETS, dropout: 0, useRslora: false }, seed);
  for (const [k, v] of lora) if (k.includes('lora_B')) v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', seed + 7));
  const dir = path.join(fx.root, name);
  saveAdapter(dir, lora, lora.cfg, fx.model);
  lora.dispose();
  return dir;
}

export async function makeInferFixture(): Promise<InferFixture> {
  const fx = makeFixture(4, 3);
  return { ...fx, adapters: [await randomAdapter(fx, 'adapter-a', 2), await randomAdapter(fx, 'adapter-b', 5)] };
}
