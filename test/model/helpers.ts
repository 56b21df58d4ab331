// Shared fixtures for model tests: tiny random models generated into a temp dir (deterministic seeds).
import { randomLora as sharedRandomLora, tmpDir } from '../helpers/index.ts';
import { makeTinyModel, type TinyModelOpts } from '../../src/model/tiny.ts';
import { initBackend } from '../../src/backend/index.ts';
import { loadBaseModel, type BaseModel, type Batch } from '../../src/model/model.ts';
import type { LoraWeights } from '../../src/model/lora.ts';
import { toF64, type RefModel } from './reference.ts';

let backendReady: Promise<unknown> | null = null;
export function ensureBackend(): Promise<unknown> {
  backendReady ??= initBackend({ backend: process.env.LORASFT_TEST_BACKEND });
  return backendReady;
}

/**
 * A tiny model of a family (vocab 48, hidden 32, 2 layers, 4/2 heads) with weights large enough (std 0.15) that
 * logits are far from uniform, generated into a fresh temp dir; returns the dir.
 */
export function tinyModelDir(opts: Partial<TinyModelOpts> & { family: TinyModelOpts['family'] }): string {
  const dir = tmpDir(opts.family);
  makeTinyModel({
    vocab: 48,
    hidden: 32,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 48,
    std: 0.15,
    seed: 7,
    ...opts,
    out: dir,
  });
  return dir;
}

/** tinyModelDir(opts), loaded. */
export async function tinyModel(
  opts: Partial<TinyModelOpts> & { family: TinyModelOpts['family'] },
): Promise<BaseModel> {
  await ensureBackend();
  return loadBaseModel(tinyModelDir(opts));
}

/** LoRA on every target with B randomised too (fresh B = 0 would hide the A path). */
export function randomLora(base: BaseModel, rank = 4, alpha = 8, seed = 3): LoraWeights {
  return sharedRandomLora(base, seed, 0.1, seed + 100, { rank, alpha });
}

export function toRef(base: BaseModel, lora: LoraWeights): RefModel {
  const w = new Map([...base.weights].map(([n, t]) => [n, toF64({ shape: t.shape, data: t.dataSync() })]));
  const l = new Map([...lora].map(([n, t]) => [n, toF64({ shape: t.shape, data: t.dataSync() })]));
  return { cfg: base.config, w, lora: l, scale: lora.scale };
}

/** Build a Batch from rows of [ids, positions, weights]. */
export function makeBatch(rows: Array<{ ids: number[]; pos?: number[]; w?: number[] }>): Batch {
  const B = rows.length;
  const T = rows[0].ids.length;
  const b: Batch = {
    B,
    T,
    inputIds: new Int32Array(B * T),
    positionIds: new Int32Array(B * T),
    weights: new Float32Array(B * T),
  };
  rows.forEach((r, i) => {
    b.inputIds.set(r.ids, i * T);
    b.positionIds.set(r.pos ?? r.ids.map((_, t) => t), i * T);
    b.weights.set(r.w ?? r.ids.map((_, t) => (t === 0 ? 0 : 1)), i * T);
  });
  return b;
}
