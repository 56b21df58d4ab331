// Inference fixture: the training tests' tiny Qwen3 model (real Qwen3 tokenizer) and random adapters with
// non-zero B (so each one changes the logits differently).
import { randomLora } from '../helpers/index.ts';
import * as path from 'node:path';
import { initBackend } from '../../src/backend/index.ts';
import { loadBaseModel } from '../../src/model/model.ts';
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
  const lora = randomLora(base, seed, 0.5, seed + 7);
  const dir = path.join(fx.root, name);
  saveAdapter(dir, lora, lora.cfg, fx.model);
  lora.dispose();
  return dir;
}

export async function makeInferFixture(): Promise<InferFixture> {
  const fx = makeFixture(4, 3);
  return { ...fx, adapters: [await randomAdapter(fx, 'adapter-a', 2), await randomAdapter(fx, 'adapter-b', 5)] };
}
