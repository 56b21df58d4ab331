// Serving throughput of one deployment: C concurrent requests decoded together by the continuous-batching engine,
// against the same C requests served one after another. Random weights at a real model's shape, the real Qwen3
// tokenizer for detokenizing, a random rank-8 LoRA on every request; end-of-turn ignored so every request
// generates exactly --gen tokens. Prints one table row per C, and a JSON line with --json.
// Usage: npm run bench -- infer --shape tiny|qwen3-0.6b [--conc 1,4,16] [--prompt 32] [--gen 32] [--threads N]
//        [--precision fp32|bf16]   (bf16: the base weights drawn directly in 16-bit, as a bf16 checkpoint loads)
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.ts';
import { loadChatTokenizer } from '../src/data/tokenizer.ts';
import { parseModelConfig } from '../src/model/config.ts';
import { Engine } from '../src/infer/engine.ts';
import type { Completion } from '../src/infer/sequence.ts';
import { tokenizerDir } from '../src/model/tiny.ts';
import { benchLora, flag, MODEL_SHAPES, randomBase, shapeFlag } from './bench-shapes.ts';

const SHAPES: Record<string, Record<string, unknown>> = {
  // scripts/make-tiny-model's default shape with the Qwen3 vocabulary (what the tests serve, 2 layers wider).
  tiny: {
    model_type: 'qwen3',
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    vocab_size: 151936,
    tie_word_embeddings: true,
    rope_theta: 1000000,
    rms_norm_eps: 1e-6,
    max_position_embeddings: 40960,
  },
  'qwen3-0.6b': MODEL_SHAPES['qwen3-0.6b'],
};

const shape = shapeFlag(SHAPES, 'tiny');
const conc = flag('--conc', '1,4,16')!.split(',').map(Number);
const P = Number(flag('--prompt', '32'));
const G = Number(flag('--gen', '32'));
const precision = flag('--precision', 'fp32')!;
if (!['fp32', 'bf16'].includes(precision)) {
  console.error(`--precision fp32|bf16 expected, got ${precision}`);
  process.exit(1);
}
const backend = await initBackend({
  backend: flag('--backend'),
  threads: flag('--threads') ? Number(flag('--threads')) : undefined,
});
console.log(
  `backend: ${backend.name} (${backend.reason}); shape ${shape}; prompt ${P} tokens, ${G} generated per request; ${precision}`,
);

const config = parseModelConfig(SHAPES[shape], `${shape} (bench)`);
const base = randomBase(config, precision === 'bf16');
const lora = benchLora(base);
for (const [k, v] of lora) if (k.includes('lora_B')) v.assign(tf.randomNormal(v.shape, 0, 0.02, 'float32', 3));
const tok = await loadChatTokenizer(tokenizerDir('qwen3'));
const engine = new Engine(base, { decode: (ids) => tok.decode(ids), eos: new Set() }, { maxBatch: 64 });

const prompt = (i: number) => Array.from({ length: P }, (_, t) => (i * 7919 + t * 104729 + 13) % 150000);
const params = { maxTokens: G, temperature: 0, topP: 1, stop: [], seed: 0 };

/** C requests; `together`: all submitted at once, else each after the previous ended. TTFT from the common start. */
async function run(C: number, together: boolean): Promise<{ tokS: number; ttft: number[]; wall: number }> {
  const t0 = performance.now();
  const ttft: number[] = [];
  const one = async (i: number): Promise<Completion> => {
    const submitted = performance.now();
    const c = await engine.submit(prompt(i), lora, params);
    ttft.push((submitted - t0) / 1000 + c.firstTokenS);
    return c;
  };
  let done: Completion[] = [];
  if (together) done = await Promise.all(Array.from({ length: C }, (_, i) => one(i)));
  else for (let i = 0; i < C; i++) done.push(await one(i));
  const wall = (performance.now() - t0) / 1000;
  const tokens = done.reduce((a, c) => a + c.completionTokens, 0);
  return { tokS: tokens / wall, ttft: ttft.sort((a, b) => a - b), wall };
}

await run(1, true); // warm-up: kernels, buffer pool
const rows: unknown[] = [];
console.log(
  '| concurrent | batched tok/s | one-by-one tok/s | speed-up | TTFT batched p50 / max (s) | TTFT one-by-one p50 / max (s) |',
);
console.log('|---|---|---|---|---|---|');
for (const C of conc) {
  const b = await run(C, true);
  const q = C === 1 ? b : await run(C, false);
  const med = (a: number[]) => a[Math.floor((a.length - 1) / 2)];
  console.log(
    `| ${C} | ${b.tokS.toFixed(1)} | ${q.tokS.toFixed(1)} | ${(b.tokS / q.tokS).toFixed(2)}x | ${med(b.ttft).toFixed(2)} / ${b.ttft[b.ttft.length - 1].toFixed(2)} | ${med(q.ttft).toFixed(2)} / ${q.ttft[q.ttft.length - 1].toFixed(2)} |`,
  );
  rows.push({
    concurrent: C,
    batched_tok_s: b.tokS,
    sequential_tok_s: q.tokS,
    ttft_batched: b.ttft,
    ttft_sequential: q.ttft,
  });
}
console.log(`engine: ${engine.stats.steps} decoding steps, largest batch ${engine.stats.maxBatchSeen}`);
if (process.argv.includes('--json'))
  console.log(JSON.stringify({ shape, precision, prompt: P, gen: G, backend: backend.name, rows }));
