// loadBaseModel against the bytes on disk, read here by hand: a sharded checkpoint gives the same tensors as the
// single file, and a BF16 checkpoint widens to float32 exactly (bf16 bits << 16). The expectations come from a
// safetensors parse and a round-to-nearest-even written in this file, not from src/model/safetensors.ts or dtypes.ts.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel } from '../../src/model/tiny.ts';
import { disposeBaseModel, loadBaseModel } from '../../src/model/model.ts';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors.ts';
import { ensureBackend } from './helpers.ts';
import { tmpDir } from '../helpers/index.ts';

/** name -> {dtype, shape, values as float32}: u64 LE header length, JSON header, little-endian F32 or BF16 data. */
function parseSafetensors(file: string): Map<string, { dtype: string; shape: number[]; values: Float32Array }> {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out = new Map<string, { dtype: string; shape: number[]; values: Float32Array }>();
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const at = 8 + n + h.data_offsets[0];
    const count = h.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(count);
    const bits = new Uint32Array(values.buffer);
    for (let i = 0; i < count; i++)
      if (h.dtype === 'F32') values[i] = buf.readFloatLE(at + 4 * i);
      else if (h.dtype === 'BF16') bits[i] = buf.readUInt16LE(at + 2 * i) << 16;
      else throw new Error(`${name}: dtype ${h.dtype}`);
    out.set(name, { dtype: h.dtype, shape: h.shape, values });
  }
  return out;
}

/** x rounded to bfloat16 (nearest, ties to even) and widened back to float32. */
function bf16Round(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = ((u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 0) & 0xffff0000;
  return f[0];
}

describe('loadBaseModel', () => {
  it('the reference rounding in this file rounds to nearest, ties to even (8 significant bits)', () => {
    expect(bf16Round(1 + 2 ** -9)).toBe(1); // below half an ulp (2^-7)
    expect(bf16Round(1 + 2 ** -8)).toBe(1); // a tie, 1 is even
    expect(bf16Round(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6); // a tie, 1 + 2^-7 is odd: up
    expect(bf16Round(1 + 2 ** -8 + 2 ** -12)).toBe(1 + 2 ** -7); // above half
    expect(bf16Round(-3.14159)).toBe(-3.140625);
  });

  it('loads a sharded model (model.safetensors.index.json) with every tensor as in the single file', async () => {
    await ensureBackend();
    const one = tmpDir('one');
    makeTinyModel({ family: 'llama', out: one, tie: false, seed: 4 });
    const sharded = tmpDir('sharded');
    fs.copyFileSync(path.join(one, 'config.json'), path.join(sharded, 'config.json'));
    const all = [...readSafetensors(path.join(one, 'model.safetensors'))];
    const weightMap: Record<string, string> = {};
    const halves = [all.slice(0, 9), all.slice(9)];
    halves.forEach((part, i) => {
      const f = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(path.join(sharded, f), new Map(part), { format: 'pt' });
      for (const [n] of part) weightMap[n] = f;
    });
    fs.writeFileSync(
      path.join(sharded, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    const want = parseSafetensors(path.join(one, 'model.safetensors'));
    const b = await loadBaseModel(sharded);
    expect([...b.weights.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, t] of want) {
      const got = b.weights.get(name)!;
      expect(got.shape, name).toEqual(t.shape);
      expect(got.dataSync(), name).toEqual(t.values);
    }
    disposeBaseModel(b);
  });

  it('converts a BF16 checkpoint to float32 exactly', async () => {
    await ensureBackend();
    const f = tmpDir('f32'),
      h = tmpDir('bf16');
    makeTinyModel({ family: 'qwen3', out: f, seed: 2 });
    makeTinyModel({ family: 'qwen3', out: h, seed: 2, dtype: 'bf16' });
    const base = await loadBaseModel(h);
    const f32 = parseSafetensors(path.join(f, 'model.safetensors'));
    const bf16 = parseSafetensors(path.join(h, 'model.safetensors'));
    for (const name of ['model.layers.1.mlp.up_proj.weight', 'model.embed_tokens.weight']) {
      expect(bf16.get(name)!.dtype).toBe('BF16');
      const got = base.weights.get(name)!.dataSync();
      // The loaded values are the file's bf16 bits widened, and those are the float32 model's values rounded.
      expect(got, name).toEqual(bf16.get(name)!.values);
      expect(got, name).toEqual(f32.get(name)!.values.map(bf16Round));
    }
    disposeBaseModel(base);
  });
});
