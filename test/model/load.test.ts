import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel } from '../../src/model/tiny.ts';
import { bf16ToF32, f32ToBf16 } from '../../src/model/dtypes.ts';
import { disposeBaseModel, loadBaseModel, lossSum } from '../../src/model/model.ts';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors.ts';
import { ensureBackend, makeBatch, tmpDir } from './helpers.ts';

describe('loadBaseModel', () => {
  it('loads a sharded model (model.safetensors.index.json) exactly like the single file', async () => {
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
    const a = await loadBaseModel(one);
    const b = await loadBaseModel(sharded);
    const batch = makeBatch([{ ids: [1, 5, 9, 13, 17, 21] }]);
    expect(lossSum(b, null, batch).loss.dataSync()[0]).toBe(lossSum(a, null, batch).loss.dataSync()[0]);
    disposeBaseModel(a);
    disposeBaseModel(b);
  });

  it('converts a BF16 checkpoint to float32 exactly', async () => {
    await ensureBackend();
    const f = tmpDir('f32'),
      h = tmpDir('bf16');
    makeTinyModel({ family: 'qwen3', out: f, seed: 2 });
    makeTinyModel({ family: 'qwen3', out: h, seed: 2, dtype: 'bf16' });
    const base = await loadBaseModel(h);
    const src = readSafetensors(path.join(f, 'model.safetensors')).get('model.layers.1.mlp.up_proj.weight')!;
    const got = base.weights.get('model.layers.1.mlp.up_proj.weight')!.dataSync();
    expect(Array.from(got)).toEqual(Array.from(bf16ToF32(f32ToBf16(src.data))));
    disposeBaseModel(base);
  });
});
