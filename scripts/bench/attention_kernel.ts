// The bf16 attention kernel alone (kernels/FusedAttentionBf16.cc through the addon, no tfjs): forward and backward
// of one layer with RoPE and Qwen3's q/k norms folded in, as the training step calls them. For docs/BENCHMARKS.md
// (bf16: where attention's time goes). Times are the fastest of --reps calls in process CPU time over 2 threads (the
// other load on a shared host counts least there); GFLOP/s count the causal 128-row blocks' products (2 forward,
// 5 backward).
//   npx tsx scripts/bench/attention_kernel.ts [--heads 16,8,128] [--seq 512] [--reps 60]
// Another build: LORASFT_ADDON=/path/lorasft_native.node (as for the tests).
import { loadAddon } from '../../src/backend/addon.ts';
import { flag } from '../bench-shapes.ts';

const [H, Hkv, D] = flag('--heads', '16,8,128')!.split(',').map(Number);
const T = Number(flag('--seq', '512')),
  reps = Number(flag('--reps', '60'));
const { addon, error } = loadAddon();
if (!addon) throw new Error(error);
addon.setThreads(2);

let seed = 1;
const rand = (n: number, base = 0, spread = 2) =>
  Float32Array.from({ length: n }, () => base + ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * spread);
const q = rand(T * H * D),
  k = rand(T * Hkv * D),
  v = rand(T * Hkv * D),
  dy = rand(T * H * D);
const [cos, sin] = [Math.cos, Math.sin].map((f) =>
  Float32Array.from({ length: T * D }, (_, i) => f(Math.floor(i / D) / 1e6 ** ((2 * (i % (D / 2))) / D))),
);
const qNorm = rand(D, 1, 0.2),
  kNorm = rand(D, 1, 0.2);
const seg = new Int32Array(T),
  out = new Float32Array(T * H * D),
  lse = new Float32Array(H * T);
const dq = new Float32Array(q.length),
  dk = new Float32Array(k.length),
  dv = new Float32Array(v.length);
const scale = 1 / Math.sqrt(D);
const tail = [cos, sin, qNorm, kNorm, 1e-6] as const;
const forward = () => addon.fusedAttention(q, k, v, seg, out, lse, 1, T, H, Hkv, D, scale, 0, true, ...tail);
const backward = () =>
  addon.fusedAttentionGrad(dy, q, k, v, seg, out, lse, dq, dk, dv, 1, T, H, Hkv, D, scale, 0, true, ...tail);

/** The fastest of `reps` calls of f, ms of CPU time per thread (after 3 warm-up calls). */
function fastest(f: () => void): number {
  for (let i = 0; i < 3; i++) f();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000 / 2);
  }
  return best;
}

const blocks = Math.ceil(T / 128),
  causal = (blocks * (blocks + 1)) / 2 / (blocks * blocks);
const product = (2 * T * T * D * H * causal) / 1e9; // GFLOP of one [T, T, D] product over the heads
const f = fastest(forward),
  b = fastest(backward);
console.log(
  JSON.stringify({
    heads: [H, Hkv, D],
    seq: T,
    forward_ms: Number(f.toFixed(2)),
    backward_ms: Number(b.toFixed(2)),
    forward_gflops: Math.round((2 * product) / f / 1e-3),
    backward_gflops: Math.round((5 * product) / b / 1e-3),
    addon: process.env.LORASFT_ADDON ?? 'build/Release',
  }),
);
