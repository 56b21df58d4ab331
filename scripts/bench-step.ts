// One LoRA training step (issue 5): forward + backward through src/model (lossAndGrads) + AdamW on the LoRA
// tensors, rank 8 on all 7 linears, fp32, batch 1, random weights (no download), for two model shapes.
// Usage: npm run bench -- --shape smollm2-135m|qwen3-0.6b [--seq 512] [--steps 4] [--backend B] [--threads N]
//        [--profile] [--json]          (last line with --json: {"shape", "tokens_per_s", "peak_rss_bytes", ...})
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.ts';
import { parseModelConfig } from '../src/model/config.ts';
import { expectedWeights, lossAndGrads, type BaseModel } from '../src/model/model.ts';
import { DEFAULT_LORA_TARGETS, initLora } from '../src/model/lora.ts';
import { ropeInvFreq } from '../src/model/rope.ts';
import { ADAMW_DEFAULTS, adamwStep, createAdamWState } from '../src/train/optimizer.ts';
import { profileKernels } from './bench-profile.ts';

// HF config.json fields of the two shapes (random weights of these sizes).
const SHAPES: Record<string, Record<string, unknown>> = {
  'smollm2-135m': { model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30,
    num_attention_heads: 9, num_key_value_heads: 3, vocab_size: 49152, tie_word_embeddings: true, rope_theta: 100000,
    rms_norm_eps: 1e-5, max_position_embeddings: 8192 },
  'qwen3-0.6b': { model_type: 'qwen3', hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28,
    num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128, vocab_size: 151936, tie_word_embeddings: true,
    rope_theta: 1000000, rms_norm_eps: 1e-6, max_position_embeddings: 40960 },
};

function flag(name: string, dflt?: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const shape = flag('--shape', 'smollm2-135m')!;
if (!SHAPES[shape]) {
  console.error(`--shape: unknown shape '${shape}', expected one of ${Object.keys(SHAPES).join(', ')}`);
  process.exit(1);
}
const T = Number(flag('--seq', '512')), steps = Number(flag('--steps', '4'));
const backend = await initBackend({ backend: flag('--backend'), threads: flag('--threads') ? Number(flag('--threads')) : undefined });
console.log(`backend: ${backend.name} (${backend.reason})`);

// Random base model: N(0, 0.02)-ish uniform weights, norms at 1 (a fast xorshift; values do not matter for speed).
const config = parseModelConfig(SHAPES[shape], `${shape} (bench)`);
let s = 12345;
const weights = new Map<string, tf.Tensor>();
for (const [name, shp] of expectedWeights(config)) {
  const n = shp.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  if (name.endsWith('norm.weight')) v.fill(1);
  else for (let i = 0; i < n; i++) { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; v[i] = (s / 2147483648) * 0.035; }
  weights.set(name, tf.tensor(v, shp));
}
if (config.tieWordEmbeddings) weights.set('lm_head.weight', weights.get('model.embed_tokens.weight')!);
const base: BaseModel = { config, dir: '(random)', weights, invFreq: ropeInvFreq(config) };
const lora = initLora(base, { rank: 8, alpha: 16, targets: DEFAULT_LORA_TARGETS, dropout: 0, useRslora: false }, 1);
const params = new Map([...lora].map(([k, v]) => [k, v.dataSync().slice() as Float32Array]));
const opt = createAdamWState(params);

const inputIds = Int32Array.from({ length: T }, (_, i) => (i * 7919 + 13) % config.vocabSize);
const batch = { B: 1, T, inputIds, positionIds: Int32Array.from({ length: T }, (_, i) => i),
  weights: Float32Array.from({ length: T }, (_, i) => (i === 0 ? 0 : 1)) };

/** forward + backward + AdamW; returns seconds. */
function step(): number {
  const t0 = performance.now();
  const { grads } = lossAndGrads(base, lora, batch);
  const g = new Map([...grads].map(([k, t]) => [k, t.dataSync() as Float32Array]));
  adamwStep(params, g, opt, 1e-4, ADAMW_DEFAULTS);
  for (const [k, v] of lora) v.assign(tf.tensor(params.get(k)!, v.shape));
  tf.dispose([...grads.values()]);
  return (performance.now() - t0) / 1000;
}

const times: number[] = [];
for (let i = 0; i < steps; i++) {
  const sec = step();
  console.log(`step ${i}${i === 0 ? ' (warm-up)' : ''}: ${sec.toFixed(2)} s, ${(T / sec).toFixed(1)} tok/s`);
  if (i > 0 || steps === 1) times.push(sec);
}
const median = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
let share: Record<string, number> | undefined;
if (process.argv.includes('--profile')) share = profileKernels(backend.name, step);
const result = {
  shape, seq: T, backend: backend.name, threads: backend.reason, steps_timed: times.length,
  step_s: Number(median.toFixed(3)), tokens_per_s: Number((T / median).toFixed(1)),
  peak_rss_bytes: process.resourceUsage().maxRSS * 1024, kernel_share: share,
};
if (process.argv.includes('--json')) console.log(JSON.stringify(result));
else console.log(result);
