// Forward/loss/gradient parity of the tfjs model with the float64 reference (test/model/reference.ts),
// finite differences, packing, GQA, biases, tied/untied heads and KV-cache decoding.
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { TinyModelOpts } from '../../src/model/tiny.ts';
import {
  createKVCache,
  disposeBaseModel,
  forwardLogits,
  fusedOpsAvailable,
  lossAndGrads,
  lossSum,
  type Batch,
} from '../../src/model/model.ts';
import { makeBatch, randomLora, tinyModel, toRef } from './helpers.ts';
import { loraConfig, maxAbs, maxdiff } from '../helpers/index.ts';
import { refLossRow, type RefModel } from './reference.ts';

const V = 48;
const seq = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 17 + seed * 5 + ((i * i) % 7)) % V);
/** Row 0 packs two documents (5 + 7 tokens, positions restart), row 1 is one document; some weights 0 or 2. */
function packedBatch(): Batch {
  const d0 = seq(5, 1),
    d1 = seq(7, 2),
    d2 = seq(12, 3);
  return makeBatch([
    { ids: [...d0, ...d1], pos: [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6], w: [0, 1, 1, 2, 1, 0, 0, 1, 1, 1, 0.5, 1] },
    { ids: d2, w: [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1] },
  ]);
}

function refBatchLoss(ref: RefModel, b: Batch): { loss: number; weightSum: number } {
  let loss = 0,
    weightSum = 0;
  for (let r = 0; r < b.B; r++) {
    const sl = (a: ArrayLike<number>) => Array.from(a).slice(r * b.T, (r + 1) * b.T);
    const o = refLossRow(ref, sl(b.inputIds), sl(b.positionIds), sl(b.weights));
    loss += o.loss;
    weightSum += o.weightSum;
  }
  return { loss, weightSum };
}

const FAMILIES: Array<[string, Partial<TinyModelOpts> & { family: TinyModelOpts['family'] }]> = [
  ['qwen3 (tied, q/k norm, GQA 4/2)', { family: 'qwen3', tie: true }],
  ['qwen2 (untied, q/k/v bias, MHA 4/4)', { family: 'qwen2', tie: false, kvHeads: 4 }],
  [
    'llama (untied, GQA 4/1, llama3 rope scaling, attention+mlp bias)',
    {
      family: 'llama',
      tie: false,
      kvHeads: 1,
      extraConfig: {
        rope_theta: 500,
        attention_bias: true,
        mlp_bias: true,
        rope_scaling: {
          rope_type: 'llama3',
          factor: 8,
          low_freq_factor: 1,
          high_freq_factor: 4,
          original_max_position_embeddings: 64,
        },
      },
    },
  ],
  // Documents are 5, 7 and 12 tokens: a window of 3 or 4 cuts all of them.
  [
    'gemma3 (tied, layers local/global/local with window 3, local rope base 100, query_pre_attn_scalar 13, GQA 4/2)',
    {
      family: 'gemma3',
      layers: 3,
      slidingWindow: 3,
      extraConfig: { query_pre_attn_scalar: 13, rope_local_base_freq: 100, rope_theta: 10000 },
    },
  ],
  [
    'gemma3 (untied, final logit soft-capping 2, linear rope scaling on the global layer, MQA 4/1, head_dim 12)',
    {
      family: 'gemma3',
      tie: false,
      kvHeads: 1,
      headDim: 12,
      slidingWindow: 4,
      extraConfig: { final_logit_softcapping: 2, rope_scaling: { rope_type: 'linear', factor: 4 }, rope_theta: 1000 },
    },
  ],
  [
    'mistral (untied, sliding window 4 on every layer, head_dim 12 != hidden/heads, GQA 4/1)',
    {
      family: 'mistral',
      tie: false,
      kvHeads: 1,
      headDim: 12,
      slidingWindow: 4,
    },
  ],
  ['mistral (sliding_window null, GQA 4/2)', { family: 'mistral', tie: false }],
];

describe.each(FAMILIES)('%s', (_name, opts) => {
  it.each([
    ['fused ops', true],
    ['plain tfjs ops', false],
  ])('%s: loss equals the float64 reference and gradients equal its central differences', async (path, fused) => {
    const base = await tinyModel(opts);
    const lora = randomLora(base);
    const batch = packedBatch();
    const ref = toRef(base, lora);
    const want = refBatchLoss(ref, batch);
    if (fused) expect(fusedOpsAvailable()).toBe(true);
    const got = lossAndGrads(base, lora, batch, { fused });
    console.log(
      `${opts.family} (${path}): loss ${got.lossSum} vs ref ${want.loss} (rel ${Math.abs(got.lossSum - want.loss) / want.loss})`,
    );
    expect(got.weightSum).toBeCloseTo(want.weightSum, 6);
    expect(Math.abs(got.lossSum - want.loss) / want.loss).toBeLessThan(1e-5);

    // Central differences in float64 on the reference, a few entries of several A and B tensors.
    const names = [...lora.keys()];
    const picks = [0, 1, 5, 8, 13, names.length - 2, names.length - 1].map((i) => names[i]);
    let worst = 0;
    for (const name of picks) {
      const g = got.grads.get(name)!.dataSync();
      const t = ref.lora.get(name)!;
      const gscale = Math.max(maxAbs(g), 1e-3);
      for (const idx of [0, Math.floor(t.data.length / 2) + 1, t.data.length - 1]) {
        const eps = 1e-4;
        const x0 = t.data[idx];
        t.data[idx] = x0 + eps;
        const lp = refBatchLoss(ref, batch).loss;
        t.data[idx] = x0 - eps;
        const lm = refBatchLoss(ref, batch).loss;
        t.data[idx] = x0;
        const fd = (lp - lm) / (2 * eps);
        worst = Math.max(worst, Math.abs(g[idx] - fd) / gscale);
      }
    }
    console.log(
      `${opts.family} (${path}): grad vs float64 finite differences, max |diff| / max|grad| = ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-3);
    for (const g of got.grads.values()) g.dispose();
    lora.dispose();
    disposeBaseModel(base);
  });

  it('a packed row gives the loss and gradients of its documents run separately', async () => {
    const base = await tinyModel(opts);
    const lora = randomLora(base);
    const d0 = seq(5, 1),
      d1 = seq(7, 2);
    const w0 = [0, 1, 1, 2, 1],
      w1 = [0, 1, 1, 1, 0.5, 1, 1];
    const packed = lossAndGrads(
      base,
      lora,
      makeBatch([{ ids: [...d0, ...d1], pos: [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6], w: [...w0, ...w1] }]),
    );
    const a = lossAndGrads(base, lora, makeBatch([{ ids: d0, w: w0 }]));
    const b = lossAndGrads(base, lora, makeBatch([{ ids: d1, w: w1 }]));
    const sep = a.lossSum + b.lossSum;
    expect(Math.abs(packed.lossSum - sep) / sep).toBeLessThan(1e-5);
    expect(packed.weightSum).toBe(a.weightSum + b.weightSum);
    let worst = 0;
    for (const [name, g] of packed.grads) {
      const s = tf.add(a.grads.get(name)!, b.grads.get(name)!);
      worst = Math.max(worst, maxdiff(g.dataSync(), s.dataSync()) / Math.max(maxAbs(s.dataSync()), 1e-6));
      s.dispose();
    }
    console.log(
      `${opts.family}: packed vs separate, loss rel ${(Math.abs(packed.lossSum - sep) / sep).toExponential(2)}, grads rel maxdiff ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-4);
    lora.dispose();
    disposeBaseModel(base);
  });

  it('incremental KV-cache decoding equals the full-sequence forward', async () => {
    const base = await tinyModel(opts);
    const lora = randomLora(base);
    const ids = Int32Array.from(seq(11, 4));
    const full = forwardLogits(base, lora, ids); // fused attention where available; the prefill below fills the cache, decoding uses the plain path
    const cache = createKVCache(base);
    const parts = [forwardLogits(base, lora, ids.subarray(0, 6), undefined, cache)];
    for (let t = 6; t < ids.length; t++)
      parts.push(forwardLogits(base, lora, ids.subarray(t, t + 1), undefined, cache));
    const inc = tf.concat(parts, 0);
    const d = maxdiff(full.dataSync(), inc.dataSync());
    console.log(`${opts.family}: KV-cache decode vs full forward maxdiff ${d.toExponential(2)}`);
    expect(cache.length).toBe(11);
    expect(d).toBeLessThan(1e-5);
    const plain = forwardLogits(base, lora, ids, undefined, undefined, { fused: false });
    expect(maxdiff(plain.dataSync(), full.dataSync())).toBeLessThan(1e-5);
    const last = forwardLogits(base, lora, ids, undefined, undefined, { lastOnly: true });
    expect(last.shape).toEqual([1, V]);
    expect(maxdiff(last.dataSync(), full.dataSync().subarray(10 * V))).toBeLessThan(1e-6);
    lora.dispose();
    disposeBaseModel(base);
  });
});

describe('model details', () => {
  it('fresh LoRA (B = 0) leaves the base loss unchanged and only B gets gradients', async () => {
    const base = await tinyModel({ family: 'qwen3' });
    const { initLora } = await import('../../src/model/lora.ts');
    const lora = initLora(base, loraConfig({ rank: 8, alpha: 16 }), 1);
    const batch = packedBatch();
    const noLora = lossSum(base, null, batch);
    const evalOnly = lossSum(base, null, batch, { forBackward: false });
    expect(Math.abs(evalOnly.loss.dataSync()[0] - noLora.loss.dataSync()[0])).toBeLessThan(1e-4);
    const r = lossAndGrads(base, lora, batch);
    expect(r.lossSum).toBeCloseTo(noLora.loss.dataSync()[0], 4);
    for (const [name, g] of r.grads) {
      if (name.includes('lora_A')) expect(maxAbs(g.dataSync())).toBe(0);
      else expect(maxAbs(g.dataSync())).toBeGreaterThan(0);
    }
    // A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming-uniform a=sqrt 5), deterministic given the seed.
    const A = lora.get('base_model.model.model.layers.0.mlp.down_proj.lora_A.weight')!;
    expect(A.shape).toEqual([8, 48]);
    expect(maxAbs(A.dataSync())).toBeLessThanOrEqual(1 / Math.sqrt(48));
    const again = initLora(base, loraConfig({ rank: 8, alpha: 16 }), 1);
    expect(Array.from(again.get('base_model.model.model.layers.0.mlp.down_proj.lora_A.weight')!.dataSync())).toEqual(
      Array.from(A.dataSync()),
    );
    expect(() => initLora(base, loraConfig({ rank: 6, alpha: 12 }), 1)).toThrow(/power of 2/);
    expect(() => initLora(base, loraConfig({ rank: 64, alpha: 12 }), 1)).toThrow(/power of 2/);
    lora.dispose();
    again.dispose();
    disposeBaseModel(base);
  });

  it('LoRA dropout is deterministic given dropoutSeed and off without one', async () => {
    const base = await tinyModel({ family: 'llama' });
    const { initLora } = await import('../../src/model/lora.ts');
    const lora = initLora(base, loraConfig({ dropout: 0.3 }), 1);
    for (const [name, v] of lora) if (name.includes('lora_B')) v.assign(tf.fill(v.shape, 0.2));
    const batch = packedBatch();
    const val = (seed?: number) => lossSum(base, lora, batch, { dropoutSeed: seed }).loss.dataSync()[0];
    expect(val(5)).toBe(val(5));
    expect(val(5)).not.toBe(val(6));
    expect(val(5)).not.toBe(val(undefined));
    const ref = refBatchLoss(toRef(base, lora), batch).loss;
    expect(Math.abs(val(undefined) - ref) / ref).toBeLessThan(1e-5);
    lora.dispose();
    disposeBaseModel(base);
  });

  it.each([['qwen3' as const], ['gemma3' as const]])(
    '%s: activation checkpointing gives the same loss and gradients (fused and plain ops, with dropout)',
    async (family) => {
      const base = await tinyModel({ family, layers: 3, ...(family === 'gemma3' ? { slidingWindow: 3 } : {}) }); // gemma3: local, global, local layers
      const { initLora } = await import('../../src/model/lora.ts');
      const lora = initLora(base, loraConfig({ dropout: 0.1 }), 1);
      for (const [name, v] of lora) if (name.includes('lora_B')) v.assign(tf.fill(v.shape, 0.05));
      const batch = packedBatch();
      for (const fused of [true, false]) {
        const before = tf.memory().numTensors;
        const a = lossAndGrads(base, lora, batch, { fused, checkpoint: false, dropoutSeed: 9 });
        const b = lossAndGrads(base, lora, batch, { fused, checkpoint: true, dropoutSeed: 9 });
        expect(b.lossSum).toBe(a.lossSum);
        let worst = 0;
        for (const [name, g] of a.grads)
          worst = Math.max(
            worst,
            maxdiff(g.dataSync(), b.grads.get(name)!.dataSync()) / Math.max(maxAbs(g.dataSync()), 1e-9),
          );
        console.log(`checkpoint vs none (${fused ? 'fused' : 'plain'}): grads rel maxdiff ${worst.toExponential(2)}`);
        expect(worst).toBeLessThan(1e-5);
        for (const g of [...a.grads.values(), ...b.grads.values()]) g.dispose();
        expect(tf.memory().numTensors).toBe(before); // nothing leaks through the recompute
      }
      lora.dispose();
      disposeBaseModel(base);
    },
  );

  it.each([['gemma3' as const], ['mistral' as const]])(
    '%s: a sliding window shorter than a packed document changes the loss; one as long as every document does not',
    async (family) => {
      // The same weights (same seed) with different windows; packedBatch's documents are 5, 7 and 12 tokens.
      const loss = async (slidingWindow: number | null) => {
        const base = await tinyModel({ family, slidingWindow });
        const lora = randomLora(base);
        const r = {
          fused: lossSum(base, lora, packedBatch()).loss.dataSync()[0],
          plain: lossSum(base, lora, packedBatch(), { fused: false }).loss.dataSync()[0],
        };
        lora.dispose();
        disposeBaseModel(base);
        return r;
      };
      const w3 = await loss(3),
        w12 = await loss(12),
        w64 = await loss(64);
      console.log(`${family}: loss with window 3 ${w3.fused}, 12 ${w12.fused}, 64 ${w64.fused}`);
      expect(w12.fused).toBe(w64.fused);
      expect(Math.abs(w3.fused - w12.fused) / w12.fused).toBeGreaterThan(1e-4); // fp32 noise is ~1e-7
      expect(Math.abs(w3.plain - w3.fused) / w3.fused).toBeLessThan(1e-5);
      if (family === 'mistral') expect((await loss(null)).fused).toBe(w64.fused);
    },
  );

  it('a batch with no trained tokens has loss 0 and zero gradients', async () => {
    const base = await tinyModel({ family: 'qwen2' });
    const lora = randomLora(base);
    const r = lossAndGrads(base, lora, makeBatch([{ ids: [1, 2, 3, 4], w: [1, 0, 0, 0] }])); // t = 0 is never trained
    expect(r.lossSum).toBe(0);
    expect(r.weightSum).toBe(0);
    for (const g of r.grads.values()) expect(maxAbs(g.dataSync())).toBe(0);
    lora.dispose();
    disposeBaseModel(base);
  });

  it('rejects out-of-vocabulary ids with a clear error', async () => {
    const base = await tinyModel({ family: 'qwen2' });
    expect(() => lossSum(base, null, makeBatch([{ ids: [1, 2, 999] }]))).toThrow(
      /token id 999 at index 2 is outside the vocabulary \[0, 48\)/,
    );
    // A label is checked where it is trained, and the error gives its index in the batch (not among trained labels).
    const b = makeBatch([{ ids: [1, 2, 3, 4], w: [0, 0, 1, 1] }]);
    b.labels = Int32Array.from([999, 999, 3, 500]);
    expect(() => lossSum(base, null, b)).toThrow(
      /batch labels: token id 500 at index 3 is outside the vocabulary \[0, 48\)/,
    );
    disposeBaseModel(base);
  });
});
