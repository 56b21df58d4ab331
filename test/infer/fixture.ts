// Inference fixture: the training tests' tiny Qwen3 model (real Qwen3 tokenizer) and random adapters with
// non-zero B (so each one changes the logits differently).
import { makeFixture, randomAdapter, type Fixture } from '../train/fixture.ts';

export interface InferFixture extends Fixture {
  /** Two random adapter dirs on the model. */
  adapters: [string, string];
}

export async function makeInferFixture(): Promise<InferFixture> {
  const fx = makeFixture(4, 3);
  return { ...fx, adapters: [await randomAdapter(fx, 'adapter-a', 2), await randomAdapter(fx, 'adapter-b', 5)] };
}
