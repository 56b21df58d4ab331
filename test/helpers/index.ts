// The shared test helpers (no child processes here: test/helpers/run.ts has those): temp dirs, seeded inputs from
// src/util/random.ts's generator, one maxdiff (and its cpu-vs-native form), the LoRA config and random LoRA
// weights, the CLI entry point and a no-cache greedy decode reference.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc } from '@tensorflow/tfjs-core';
import { forwardLogits, type BaseModel } from '../../src/model/model.ts';
import { DEFAULT_LORA_TARGETS, initLora, type LoraConfig, type LoraWeights } from '../../src/model/lora.ts';
import { mulberry32 } from '../../src/util/random.ts';

/** Merges `patch` into adapter dir `dir`'s adapter_config.json (a key set to undefined is dropped); its path. */
export function patchAdapterConfig(dir: string, patch: Record<string, unknown>): string {
  const file = path.join(dir, 'adapter_config.json');
  fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), ...patch }));
  return file;
}

/** bin/lorasft.js, the CLI entry point. */
export const BIN = new URL('../../bin/lorasft.js', import.meta.url).pathname;

/** A fresh directory under the OS temp dir, named lorasft-TAG-XXXXXX. */
export function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lorasft-${tag}-`));
}

/** Seeded uniform values in [-scale, scale] (mulberry32: the same values on every run and platform). */
export function rand(n: number, seed: number, scale = 1): Float32Array {
  const next = mulberry32(seed);
  return new Float32Array(n).map(() => (next() * 2 - 1) * scale);
}

/** Seeded integers uniform in [0, hi). */
export function randInt(n: number, seed: number, hi: number): Int32Array {
  const next = mulberry32(seed);
  return new Int32Array(n).map(() => Math.floor(next() * hi));
}

/** max_i |a_i - b_i|; arrays of different lengths are an error. */
export function maxdiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** max_i |a_i|. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/**
 * Runs f on 'cpu', then on 'native' (f builds its inputs, so each backend reads its own); returns max |cpu - native|
 * over all outputs. Outputs must agree in number, shape and dtype.
 */
export async function cpuNativeDiff(f: () => tf.Tensor | tf.Tensor[]): Promise<number> {
  const res: { shape: number[]; dtype: string; v: Float32Array }[][] = [];
  for (const b of ['cpu', 'native']) {
    await tf.setBackend(b);
    res.push(
      tf.tidy(() => {
        const o = f();
        return (Array.isArray(o) ? o : [o]).map((t) => ({
          shape: t.shape,
          dtype: t.dtype,
          v: Float32Array.from(t.dataSync()),
        }));
      }),
    );
  }
  const [c, n] = res;
  if (c.length !== n.length) throw new Error(`cpu gave ${c.length} outputs, native ${n.length}`);
  let m = 0;
  c.forEach((t, i) => {
    const where = `output ${i}: cpu ${t.dtype} [${t.shape}], native ${n[i].dtype} [${n[i].shape}]`;
    if (t.shape.join() !== n[i].shape.join() || t.dtype !== n[i].dtype) throw new Error(where);
    m = Math.max(m, maxdiff(t.v, n[i].v));
  });
  return m;
}

/** The LoRA config most tests use (rank 4, alpha 8, every default target, no dropout, no rsLoRA), with `over`. */
export function loraConfig(over: Partial<LoraConfig> = {}): LoraConfig {
  return { rank: 4, alpha: 8, targets: DEFAULT_LORA_TARGETS, dropout: 0, useRslora: false, ...over };
}

/**
 * LoRA weights with A from initLora(seed) and, unlike a fresh init, B ~ N(0, bStd) (tf.randomNormal, the i-th B
 * seeded bSeed + i: each differs), so the adapter changes the logits and gradients reach A.
 */
export function randomLora(
  base: BaseModel,
  seed: number,
  bStd: number,
  bSeed: number,
  cfg: Partial<LoraConfig> = {},
): LoraWeights {
  const lora = initLora(base, loraConfig(cfg), seed);
  let i = 0;
  for (const [k, v] of lora)
    if (k.includes('lora_B')) v.assign(tf.randomNormal(v.shape, 0, bStd, 'float32', bSeed + i++));
  return lora;
}

/** Greedy continuation without a cache (recomputes the whole sequence each step): the reference for decoding. */
export function greedyNoCache(base: BaseModel, lora: LoraWeights | null, prompt: number[], n: number): number[] {
  const seq = [...prompt];
  for (let i = 0; i < n; i++) {
    const next = tf.tidy(
      () =>
        tf
          .argMax(forwardLogits(base, lora, Int32Array.from(seq), undefined, undefined, { lastOnly: true }), 1)
          .dataSync()[0],
    );
    seq.push(next);
  }
  return seq.slice(prompt.length);
}

/**
 * How many times `f` ran the 'cpu' kernel `name` on the 'native' backend: a native kernel's fallback calls the cpu
 * kernel through the registry, so counting its calls shows whether the fallback ran.
 */
export async function cpuKernelCalls(name: string, f: () => void): Promise<number> {
  await tf.setBackend('native');
  const k = tf.getKernel(name, 'cpu') as { kernelFunc: KernelFunc };
  const original = k.kernelFunc;
  let calls = 0;
  k.kernelFunc = ((args: Parameters<KernelFunc>[0]) => {
    calls++;
    return original(args);
  }) as KernelFunc;
  try {
    tf.tidy(f);
  } finally {
    k.kernelFunc = original;
  }
  return calls;
}
