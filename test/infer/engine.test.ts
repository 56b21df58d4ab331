import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.ts';
import * as ops from '../../src/ops/index.ts';
import { createKVCache, disposeKVCache, forwardLogits } from '../../src/model/model.ts';
import { loraFromTensors, type LoraWeights } from '../../src/model/lora.ts';
import { loadAdapter } from '../../src/model/peft.ts';
import { BATCHED_FAMILIES, decodeStep } from '../../src/infer/batch_step.ts';
import { Deployment } from '../../src/infer/deployment.ts';
import { choiceSeed, heldBack, type SamplingParams } from '../../src/infer/sequence.ts';
import { generate } from '../../src/infer/generate.ts';
import { makeInferFixture, type InferFixture } from './fixture.ts';

let fx: InferFixture;
let dep: Deployment;
const greedy = (maxTokens: number, over: Partial<SamplingParams> = {}): SamplingParams => ({
  maxTokens,
  temperature: 0,
  topP: 1,
  stop: [],
  seed: 0,
  ...over,
});
const PROMPTS = ['What is 2 plus 3?', 'Name a city in France.', 'Hello there'];

beforeAll(async () => {
  await initBackend({});
  fx = await makeInferFixture();
  dep = await Deployment.load(fx.model);
  dep.loadLora('a', fx.adapters[0]);
  dep.loadLora('b', fx.adapters[1]);
});

/** `lorasft generate`'s result for the same prompt and adapter. */
function reference(content: string, adapter: string | null, maxNewTokens: number, temperature = 0, seed = 0) {
  const a = adapter === null ? null : loadAdapter(fx.adapters[adapter === 'a' ? 0 : 1]);
  const lora = a ? loraFromTensors(dep.base, a.lora, a.cfg, 'x') : null;
  const g = generate(dep.base, lora, dep.tokenizer, [{ role: 'user', content }], {
    maxNewTokens,
    temperature,
    topP: 1,
    seed,
  });
  lora?.dispose();
  return g;
}

describe('inference engine', () => {
  it('a batched decoding step gives each row the logits of its own sequence, whatever its adapter', () => {
    const rows = ([null, 'a', 'b', 'a'] as const).map((name, i) => {
      const lora =
        name === null
          ? null
          : loraFromTensors(
              dep.base,
              loadAdapter(fx.adapters[name === 'a' ? 0 : 1]).lora,
              { alpha: 8, dropout: 0, useRslora: false },
              'x',
            );
      const cache = createKVCache(dep.base);
      const prompt = dep.encode({ messages: [{ role: 'user', content: PROMPTS[i % 3] + ' '.repeat(i) }] });
      forwardLogits(dep.base, lora, Int32Array.from(prompt), undefined, cache, { lastOnly: true }).dispose();
      return { token: 100 + i, cache, lora, prompt };
    });
    // Grouped by adapter, as the engine orders them: none, a, a, b.
    const order = [rows[0], rows[1], rows[3], rows[2]];
    const batched = decodeStep(dep.base, order);
    for (const [b, r] of order.entries()) {
      const ref = forwardLogits(dep.base, r.lora, Int32Array.from([...r.prompt, r.token]), undefined, undefined, {
        lastOnly: true,
      });
      const diff = tf.max(tf.abs(tf.sub(tf.slice(batched, [b, 0], [1, -1]), ref))).dataSync()[0];
      expect(diff, `row ${b}`).toBeLessThan(1e-4);
      expect(r.cache.length).toBe(r.prompt.length + 1);
      ref.dispose();
    }
    batched.dispose();
    for (const r of rows) {
      disposeKVCache(r.cache);
      r.lora?.dispose();
    }
  });

  it('greedy output equals lorasft generate token for token, alone and with requests for other adapters in the batch', async () => {
    for (const adapter of [null, 'a'] as const) {
      const one = await dep.complete(
        dep.encode({ messages: [{ role: 'user', content: PROMPTS[0] }] }),
        adapter,
        greedy(12),
      );
      const ref = reference(PROMPTS[0], adapter, 12);
      expect(one.ids).toEqual(ref.ids);
      expect(one.text).toBe(ref.text);
      expect(one.promptTokens).toBe(ref.promptTokens);
    }
    const before = dep.engine.stats.maxBatchSeen;
    const adapters = [null, 'a', 'b'] as const;
    // Submitted in one tick: all three join the same batch.
    const all = await Promise.all(
      adapters.map((a, i) =>
        dep.complete(dep.encode({ messages: [{ role: 'user', content: PROMPTS[i] }] }), a, greedy(10)),
      ),
    );
    all.forEach((c, i) => expect(c.ids, `request ${i}`).toEqual(reference(PROMPTS[i], adapters[i], 10).ids));
    expect(Math.max(before, dep.engine.stats.maxBatchSeen)).toBe(3);
  });

  it('a family the batched step does not cover decodes one sequence at a time, with the same tokens', async () => {
    BATCHED_FAMILIES.delete('qwen3');
    try {
      const steps = dep.engine.stats.steps;
      const got = await Promise.all(
        ['a', 'b'].map((a, i) =>
          dep.complete(dep.encode({ messages: [{ role: 'user', content: PROMPTS[i] }] }), a, greedy(5)),
        ),
      );
      got.forEach((c, i) => expect(c.ids).toEqual(reference(PROMPTS[i], i ? 'b' : 'a', 5).ids));
      expect(dep.engine.stats.steps).toBeGreaterThan(steps);
    } finally {
      BATCHED_FAMILIES.add('qwen3');
    }
  });

  it('a burst of requests joins over several steps under the prefill budget, with the same tokens', async () => {
    const budget = dep.engine.maxPrefillTokens;
    dep.engine.maxPrefillTokens = 1; // one request admitted per step
    try {
      const steps = dep.engine.stats.steps;
      const got = await Promise.all(
        PROMPTS.map((p) => dep.complete(dep.encode({ messages: [{ role: 'user', content: p }] }), 'a', greedy(4))),
      );
      got.forEach((c, i) => expect(c.ids).toEqual(reference(PROMPTS[i], 'a', 4).ids));
      // Joining one per step: 3 requests of 4 tokens take 3 + 2 steps (the last joins two steps after the first).
      expect(dep.engine.stats.steps - steps).toBe(5);
    } finally {
      dep.engine.maxPrefillTokens = budget;
    }
  });

  it('sampling follows the seed as lorasft generate does; usage and finish reasons', async () => {
    const p = dep.encode({ messages: [{ role: 'user', content: PROMPTS[1] }] });
    const [x, y] = await Promise.all([
      dep.complete(p, 'b', greedy(8, { temperature: 1, seed: 11 })),
      dep.complete(p, 'b', greedy(8, { temperature: 1, seed: 11 })),
    ]);
    expect(x.ids).toEqual(y.ids);
    expect(x.ids).toEqual(reference(PROMPTS[1], 'b', 8, 1, 11).ids);
    expect(x.finishReason).toBe('length');
    expect(x.completionTokens).toBe(8);
    expect(x.promptTokens).toBe(p.length);
  });

  it('stops before a stop string, streaming exactly the returned text', async () => {
    const p = dep.encode({ messages: [{ role: 'user', content: PROMPTS[2] }] });
    const full = await dep.complete(p, 'a', greedy(16));
    const cut = full.text.slice(3, 6);
    expect(cut.length).toBe(3);
    const pieces: string[] = [];
    const c = await dep.complete(p, 'a', greedy(16, { stop: ['\u0000never', cut] }), { onText: (s) => pieces.push(s) });
    expect(c.text).toBe(full.text.slice(0, full.text.indexOf(cut)));
    expect(c.finishReason).toBe('stop');
    expect(pieces.join('')).toBe(c.text);
    const streamed: string[] = [];
    const d = await dep.complete(p, 'a', greedy(16), { onText: (s) => streamed.push(s) });
    expect(streamed.join('')).toBe(d.text);
    expect(heldBack('abcST', ['STOP', 'x'])).toBe(2);
    expect(heldBack('abc', ['STOP'])).toBe(0);
  });

  it('max tokens 0 runs no step (the prompt alone); choice seeds keep choice 0 and differ for the others', async () => {
    const p = dep.encode({ messages: [{ role: 'user', content: PROMPTS[1] }] });
    const steps = dep.engine.stats.steps;
    const pieces: string[] = [];
    const c = await dep.complete(p, 'a', greedy(0), { onText: (s) => pieces.push(s) });
    expect([c.text, c.ids, c.completionTokens, c.promptTokens, c.finishReason]).toEqual([
      '',
      [],
      0,
      p.length,
      'length',
    ]);
    expect([pieces, dep.engine.stats.steps, dep.engine.inFlight]).toEqual([[], steps, 0]);
    const seeds = [0, 1, 2, 3].map((k) => choiceSeed(42, k));
    expect(seeds[0]).toBe(42);
    expect(new Set(seeds).size).toBe(4);
    expect([1, 2, 3].map((k) => choiceSeed(42, k))).toEqual(seeds.slice(1));
  });

  it("identical prompts admitted together share one prefill, each sampled as if alone (a request's n choices)", async () => {
    const p = dep.encode({ messages: [{ role: 'user', content: PROMPTS[0] }] });
    const runs: Array<[string, number]> = [
      ['a', choiceSeed(5, 0)],
      ['a', choiceSeed(5, 1)],
      ['a', choiceSeed(5, 2)],
      ['b', choiceSeed(5, 0)],
    ];
    const sampled = (seed: number) => greedy(4, { temperature: 1, seed });
    const alone = [];
    for (const [name, seed] of runs) alone.push((await dep.complete(p, name, sampled(seed))).ids);
    const [before, tensors] = [dep.engine.stats.prefills, tf.memory().numTensors];
    const together = await Promise.all(runs.map(([name, seed]) => dep.complete(p, name, sampled(seed))));
    expect(together.map((c) => c.ids)).toEqual(alone);
    expect(tf.memory().numTensors).toBe(tensors); // the shared caches are all freed
    expect(new Set(alone.slice(0, 3).map((ids) => ids.join())).size).toBe(3);
    expect(dep.engine.stats.prefills - before).toBe(2); // one for adapter a's three, one for b
  });

  it('cancels on abort, and an adapter unloaded mid-request stays usable until that request ends', async () => {
    const p = dep.encode({ messages: [{ role: 'user', content: PROMPTS[0] }] });
    const ac = new AbortController();
    let n = 0;
    const c = await dep.complete(p, 'a', greedy(200), { signal: ac.signal, onText: () => ++n === 2 && ac.abort() });
    expect(c.finishReason).toBe('cancelled');
    expect(c.completionTokens).toBeLessThan(200);
    const pending = dep.complete(p, 'b', greedy(6));
    expect(dep.unloadLora('b')).toBe(true);
    expect((await pending).ids).toEqual(reference(PROMPTS[0], 'b', 6).ids);
    await expect(dep.complete(p, 'b', greedy(2))).rejects.toThrow("adapter 'b' is not loaded");
    dep.loadLora('b', fx.adapters[1]);
  });
});

describe('inference engine on bf16 weights', () => {
  // The fixture's F32 checkpoint narrowed to bf16 (as --precision bf16 loads it): the batched step reads packed
  // bf16 embedding, linear and lm_head weights, and runs the norms and SwiGLU as the decoder does for bf16 models.
  it('a batched step matches each row decoded alone, and greedy output equals generate on the same weights', async () => {
    const d = await Deployment.load(fx.model, {}, 'bf16');
    try {
      expect(ops.isBf16(d.base.weights.get('model.layers.0.mlp.down_proj.weight')!)).toBe(true);
      d.loadLora('a', fx.adapters[0]);
      const a = loadAdapter(fx.adapters[0]);
      const lora = loraFromTensors(d.base, a.lora, a.cfg, 'x');
      const prefill = (l: LoraWeights | null, prompt: number[]) => {
        const cache = createKVCache(d.base);
        forwardLogits(d.base, l, Int32Array.from(prompt), undefined, cache, { lastOnly: true }).dispose();
        return cache;
      };
      const rows = [null, lora].map((l, i) => {
        const prompt = d.encode({ messages: [{ role: 'user', content: PROMPTS[i] }] });
        return { token: 200 + i, cache: prefill(l, prompt), lora: l, prompt };
      });
      const batched = decodeStep(d.base, rows); // two adapters (none, a): the base product once, then the deltas
      for (const [b, r] of rows.entries()) {
        // The same token decoded alone over its own cache, as lorasft generate decodes.
        const cache = prefill(r.lora, r.prompt);
        const ref = forwardLogits(d.base, r.lora, Int32Array.of(r.token), undefined, cache, { lastOnly: true });
        const diff = tf.max(tf.abs(tf.sub(tf.slice(batched, [b, 0], [1, -1]), ref))).dataSync()[0];
        expect(diff, `row ${b}`).toBeLessThan(1e-4);
        ref.dispose();
        disposeKVCache(cache);
        disposeKVCache(r.cache);
      }
      batched.dispose();
      const one = await d.complete(d.encode({ messages: [{ role: 'user', content: PROMPTS[1] }] }), 'a', greedy(10));
      const ref = generate(d.base, lora, d.tokenizer, [{ role: 'user', content: PROMPTS[1] }], {
        maxNewTokens: 10,
        temperature: 0,
        topP: 1,
        seed: 0,
      });
      expect(one.ids).toEqual(ref.ids);
      lora.dispose();
    } finally {
      await d.close();
    }
  });
});
