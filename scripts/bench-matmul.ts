// Matmul GFLOP/s per backend ('cpu' tfjs JS, 'native' tfjs kernel -> OpenBLAS, raw sgemm through the addon)
// for the linear layers of a 0.5B model (Qwen2.5-0.5B: C 896, intermediate 4864, kv 128, T 512, LoRA r 8).
// Usage: npx tsx scripts/bench-matmul.ts [--threads N] [--reps N] [--no-cpu]   (or: npm run bench -- matmul)
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.ts';
import { loadAddon } from '../src/backend/addon.ts';
import { Rng } from '../src/util/random.ts';

interface Shape {
  name: string;
  M: number;
  N: number;
  K: number;
  tA: boolean;
  tB: boolean;
}
const T = 512,
  C = 896,
  I = 4864,
  KV = 128,
  R = 8;
// out [M, N] = op(a) op(b); a is [M, K] (or [K, M] if tA), b is [K, N] (or [N, K] if tB).
const SHAPES: Shape[] = [
  { name: 'q/o_proj  x[T,C] W^T[C,C]', M: T, N: C, K: C, tA: false, tB: true },
  { name: 'k/v_proj  x[T,C] W^T[C,128]', M: T, N: KV, K: C, tA: false, tB: true },
  { name: 'gate/up   x[T,C] W^T[C,I]', M: T, N: I, K: C, tA: false, tB: true },
  { name: 'down      h[T,I] W^T[I,C]', M: T, N: C, K: I, tA: false, tB: true },
  { name: 'dX gate   dy[T,I] W[I,C]', M: T, N: C, K: I, tA: false, tB: false },
  { name: 'lora A    x[T,C] A^T[C,r]', M: T, N: R, K: C, tA: false, tB: true },
  { name: 'lora B    u[T,r] B^T[r,I]', M: T, N: I, K: R, tA: false, tB: true },
  { name: 'dA        du^T[r,T] x[T,C]', M: R, N: C, K: T, tA: true, tB: false },
  { name: 'dB        dy^T[I,T] u[T,r]', M: I, N: R, K: T, tA: true, tB: false },
];

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function timeIt(reps: number, f: () => void): number {
  f(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    f();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]; // median
}

const threads = flag('--threads') ? Number(flag('--threads')) : undefined;
const reps = Number(flag('--reps') ?? 10);
const choice = await initBackend({ backend: 'native', threads });
console.log(`backend: ${choice.name} (${choice.reason})`);
const addon = loadAddon().addon;
const rows: string[] = [
  '| shape | M x N x K | cpu GFLOP/s | native GFLOP/s | raw sgemm GFLOP/s |',
  '|---|---|---|---|---|',
];
for (const s of SHAPES) {
  const flops = 2 * s.M * s.N * s.K;
  const aShape = s.tA ? [s.K, s.M] : [s.M, s.K],
    bShape = s.tB ? [s.N, s.K] : [s.K, s.N];
  const rng = new Rng(s.M * 31 + s.N);
  const aData = rng.fillUniform(s.M * s.K, -0.5, 0.5);
  const bData = rng.fillUniform(s.K * s.N, -0.5, 0.5);
  const gf: Record<string, string> = {};
  for (const b of ['cpu', 'native']) {
    if (b === 'cpu' && process.argv.includes('--no-cpu')) {
      gf[b] = '-';
      continue;
    }
    if (b === 'native' && choice.name !== 'native') {
      gf[b] = '-';
      continue;
    }
    await tf.setBackend(b);
    const a = tf.tensor(aData, aShape),
      w = tf.tensor(bData, bShape);
    // tfjs cpu is ~1 GFLOP/s: one timed run of the big shapes is enough.
    const sec = timeIt(
      b === 'cpu' ? (flops > 1e9 ? 1 : 3) : reps,
      () => tf.matMul(a, w, s.tA, s.tB).dataSync() && undefined,
    );
    gf[b] = (flops / sec / 1e9).toFixed(1);
    tf.dispose([a, w]);
  }
  if (addon && choice.name === 'native') {
    const out = new Float32Array(s.M * s.N);
    const sec = timeIt(reps, () => addon.batchMatMul(aData, bData, out, 1, 1, s.M, s.N, s.K, s.tA, s.tB));
    gf.raw = (flops / sec / 1e9).toFixed(1);
  } else gf.raw = '-';
  rows.push(`| ${s.name} | ${s.M} x ${s.N} x ${s.K} | ${gf.cpu} | ${gf.native} | ${gf.raw} |`);
  console.log(rows[rows.length - 1]);
}
console.log(`\n${rows.join('\n')}`);
