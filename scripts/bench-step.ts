// One LoRA training step (issues 5, 14) as the trainer takes it (src/train: forward + backward through src/model,
// the gradients read out, clipped, AdamW on the LoRA tensors), rank 8 on all 7 linears, batch 1, random weights (no
// download; bf16 ones made directly in 16-bit).
// Usage: npm run bench -- --shape smollm2-135m|qwen3-0.6b|qwen3-1.7b|llama3-8b [--seq 512] [--steps 4]
//        [--precision fp32|bf16] [--checkpoint auto|on|off] [--layers N] [--backend B] [--threads N]
//        [--profile] [--json]          (last line with --json: {"shape", "tokens_per_s", "peak_rss_bytes", ...})
// llama3-8b defaults to T=2048 with activation checkpointing on; --layers N keeps N layers (memory extrapolates).
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.ts';
import type { NativeBackend } from '../src/backend/native_backend.ts';
import { keepCpusAwake } from '../src/backend/keep_awake.ts';
import { parseModelConfig } from '../src/model/config.ts';
import { expectedWeights } from '../src/model/model.ts';
import { bf16Support } from '../src/model/precision.ts';
import { loadAddon } from '../src/backend/addon.ts';
import { ADAMW_DEFAULTS, adamwStep, clipGradNorm, createAdamWState } from '../src/train/optimizer.ts';
import { modelLoss, syncVars } from '../src/train/loop.ts';
import { accumulateStep } from '../src/train/step.ts';
import { profileKernels } from './bench-profile.ts';
import { benchLora, flag, MODEL_SHAPES, randomBase, shapeFlag } from './bench-shapes.ts';
/** GFLOP/s of one 2048x1024x1024 product through the addon: bf16 (oneDNN's bf16 dot products, the and
 * PyTorch's yardstick, even where the step runs them widened to fp32; or the fallback) or fp32 sgemm, best of 5.
 * Taken right before each step too: on a shared host the same product's rate moves 2-3x within minutes, so the
 * step's share of it is only meaningful against a peak measured next to it. */
function matmulPeak(): number | undefined {
  const addon = loadAddon().addon as unknown as Record<string, (...a: unknown[]) => void> | null;
  if (backend.name !== 'native' || !addon) return undefined;
  const onednn = precision === 'bf16' && loadAddon().addon!.bf16Info().path === 'onednn';
  if (onednn) addon.setBf16Path('onednn-bf16');
  try {
    return productRate(addon);
  } finally {
    if (onednn) addon.setBf16Path('onednn');
  }
}
function productRate(addon: Record<string, (...a: unknown[]) => void>): number {
  const [M, N, K] = [2048, 1024, 1024];
  const x = new Float32Array(M * K).fill(0.5),
    y = new Float32Array(M * N),
    W = new Int32Array((N * K) / 2).fill(0x3c003c00);
  const Wf = new Float32Array(N * K).fill(0.01);
  const run = () =>
    precision === 'bf16'
      ? addon.matMulBf16(x, W, y, M, N, K, true)
      : addon.batchMatMul(x, Wf, y, 1, 1, M, N, K, false, true);
  run();
  const times = [0, 1, 2, 3, 4]
    .map(() => {
      const t0 = performance.now();
      run();
      return performance.now() - t0;
    })
    .sort((a, b) => a - b);
  return Number(((2 * M * N * K) / (times[0] / 1000) / 1e9).toFixed(1));
}

const shape = shapeFlag(MODEL_SHAPES, 'smollm2-135m');
const big = shape === 'llama3-8b';
const T = Number(flag('--seq', big ? '2048' : '512')),
  steps = Number(flag('--steps', '4'));
const precision = flag('--precision', 'fp32')!;
const ckFlag = flag('--checkpoint', big ? 'on' : 'auto')!;
if (!['fp32', 'bf16'].includes(precision) || !['auto', 'on', 'off'].includes(ckFlag)) {
  console.error(`--precision fp32|bf16 and --checkpoint auto|on|off expected, got ${precision}, ${ckFlag}`);
  process.exit(1);
}
const backend = await initBackend({
  backend: flag('--backend'),
  threads: flag('--threads') ? Number(flag('--threads')) : undefined,
});
console.log(`backend: ${backend.name} (${backend.reason})`);
if (precision === 'bf16') console.log(`precision: bf16 (${bf16Support().detail})`);

// Random base model (bench-shapes.ts): bf16 weights are made directly in 16-bit.
const layers = flag('--layers');
const config = parseModelConfig(
  { ...MODEL_SHAPES[shape], ...(layers ? { num_hidden_layers: Number(layers) } : {}) },
  `${shape} (bench)`,
);
const base = randomBase(config, precision === 'bf16');
const lora = benchLora(base);
const params = new Map([...lora].map(([k, v]) => [k, v.dataSync().slice() as Float32Array]));
const opt = createAdamWState(params);

const inputIds = Int32Array.from({ length: T }, (_, i) => (i * 7919 + 13) % config.vocabSize);
const batch = {
  B: 1,
  T,
  inputIds,
  positionIds: Int32Array.from({ length: T }, (_, i) => i),
  weights: Float32Array.from({ length: T }, (_, i) => (i === 0 ? 0 : 1)),
};

const loss = modelLoss(ckFlag as 'auto' | 'on' | 'off');

/** One optimizer step as trainLoop (src/train/loop.ts) takes it: forward + backward, the gradients read out and
 *  divided by the step's tokens, clipped (maxGradNorm 1), AdamW, the variables updated; returns seconds. */
function step(): number {
  const t0 = performance.now();
  const g = accumulateStep([batch], (b) => loss.withGrads(base, lora, b, 0));
  clipGradNorm(g.grads, 1, Math.sqrt(g.sumSquares));
  adamwStep(params, g.grads, opt, 1e-4, ADAMW_DEFAULTS);
  syncVars(lora, params);
  return (performance.now() - t0) / 1000;
}

// Matmul work per token: 2 x params forward + 2 x params for dX (LoRA: no weight gradients of the base).
const P = [...expectedWeights(config)]
  .filter(([n, sh]) => sh.length === 2 && (n !== 'model.embed_tokens.weight' || config.tieWordEmbeddings))
  .reduce((a, [, sh]) => a + sh[0] * sh[1], 0);
const modelGflops = (sec: number) => (4 * P * T) / sec / 1e9;
// The median step (of an even count, the slower of the middle two) and its index in `times`.
const medianAt = (v: number[]) => v.indexOf([...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]);

/** Seconds the bf16 path has spent in oneDNN's linear and lm_head products so far (undefined off it). */
function productSeconds(): number | undefined {
  const info = precision === 'bf16' && backend.name === 'native' ? loadAddon().addon?.bf16Info() : undefined;
  return info?.path === 'onednn' ? info.productSeconds : undefined;
}

/** Bytes the native backend's buffer pool has allocated anew so far (0 on other backends). */
const freshBytes = () => (tf.backend() as Partial<NativeBackend>).pool?.freshBytes ?? 0;

const rest = keepCpusAwake(backend); // as train() does around its loop
const times: number[] = [],
  peaks: number[] = [],
  products: number[] = [],
  fresh: number[] = [];
for (let i = 0; i < steps; i++) {
  const peak = matmulPeak();
  const p0 = productSeconds();
  const f0 = freshBytes();
  const sec = step();
  const newBytes = freshBytes() - f0;
  const prod = p0 === undefined ? undefined : productSeconds()! - p0;
  const at = peak
    ? `, model ${modelGflops(sec).toFixed(0)} GFLOP/s = ${((modelGflops(sec) / peak) * 100).toFixed(0)}% of ${peak} before it`
    : '';
  // The products' own rate: the same FLOPs over the time spent in them (a checkpointed step also recomputes).
  const inProducts = prod
    ? `; products ${prod.toFixed(2)} s of it (${modelGflops(prod).toFixed(0)} GFLOP/s), the rest ${(sec - prod).toFixed(2)} s`
    : '';
  console.log(
    `step ${i}${i === 0 ? ' (warm-up)' : ''}: ${sec.toFixed(2)} s, ${(T / sec).toFixed(1)} tok/s${at}${inProducts}` +
      `; new buffers ${(newBytes / 1e6).toFixed(0)} MB`,
  );
  if (i > 0 || steps === 1) {
    times.push(sec);
    if (peak) peaks.push(peak);
    if (prod !== undefined) products.push(prod);
    fresh.push(newBytes);
  }
}
const mid = medianAt(times);
let share: Record<string, number> | undefined;
if (process.argv.includes('--profile')) share = profileKernels(backend.name, step, productSeconds);
rest();
const result = {
  shape,
  seq: T,
  layers: config.numLayers,
  precision,
  // bf16 on oneDNN: the products as bf16 dot products, or widened to fp32 (Intel without AMX; kernels/Dnnl.cc).
  products: precision === 'bf16' && backend.name === 'native' ? loadAddon().addon?.bf16Info().products : undefined,
  backend: backend.name,
  threads: backend.reason,
  steps_timed: times.length,
  step_s: Number(times[mid].toFixed(3)),
  tokens_per_s: Number((T / times[mid]).toFixed(1)),
  model_gflops: Number(modelGflops(times[mid]).toFixed(1)),
  // The peak taken right before the median step, and that step's model GFLOP/s over it.
  matmul_peak_gflops: peaks[mid],
  matmul_share: peaks.length ? Number((modelGflops(times[mid]) / peaks[mid]).toFixed(3)) : undefined,
  // The median step's seconds in oneDNN's linear and lm_head products (bf16), and their GFLOP/s by the model count.
  product_s: products.length ? Number(products[mid].toFixed(3)) : undefined,
  product_gflops: products.length ? Number(modelGflops(products[mid]).toFixed(1)) : undefined,
  peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  // Bytes of buffers the median step allocated anew, not recycled from the backend's pool.
  new_buffer_bytes: fresh[mid],
  kernel_share: share,
};
if (process.argv.includes('--json')) console.log(JSON.stringify(result));
else console.log(Object.fromEntries(Object.entries(result).filter(([, v]) => v !== undefined))); // as --json shows it
