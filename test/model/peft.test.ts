import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadAdapter, saveAdapter } from '../../src/model/peft.ts';
import { initLora, loraFromTensors } from '../../src/model/lora.ts';
import { disposeBaseModel, lossSum } from '../../src/model/model.ts';
import { readSafetensorsHeader, writeSafetensors } from '../../src/model/safetensors.ts';
import { makeBatch, randomLora, tinyModel } from './helpers.ts';
import { loraConfig, tmpDir } from '../helpers/index.ts';

describe('PEFT adapter', () => {
  it('saves adapter_config.json + adapter_model.safetensors in PEFT layout and loads them back exactly', async () => {
    const base = await tinyModel({ family: 'qwen3' });
    const lora = randomLora(base, 8, 16);
    const dir = tmpDir('adapter');
    saveAdapter(dir, lora, { ...lora.cfg, useRslora: true }, 'Qwen/Qwen3-0.6B');
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 8,
      lora_alpha: 16,
      bias: 'none',
      use_rslora: true,
      fan_in_fan_out: false,
      inference_mode: true,
      base_model_name_or_path: 'Qwen/Qwen3-0.6B',
      lora_dropout: 0,
    });
    expect(cfg.target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    const h = readSafetensorsHeader(path.join(dir, 'adapter_model.safetensors'));
    expect(h.metadata).toEqual({ format: 'pt' });
    expect(h.tensors.get('base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight')).toMatchObject({
      dtype: 'F32',
      shape: [8, 32],
    });
    expect(h.tensors.get('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight')).toMatchObject({
      shape: [32, 8],
    });
    expect(h.tensors.size).toBe(2 * 7 * 2);

    const back = loadAdapter(dir);
    expect(back.cfg).toEqual({ rank: 8, alpha: 16, targets: cfg.target_modules, dropout: 0, useRslora: true });
    for (const [name, v] of lora) expect(Array.from(back.lora.get(name)!.data)).toEqual(Array.from(v.dataSync()));
    // Reloaded as variables it computes the same loss.
    const again = loraFromTensors(base, back.lora, { alpha: 16, dropout: 0, useRslora: false }, dir);
    const batch = makeBatch([{ ids: [3, 1, 4, 1, 5, 9, 2, 6] }]);
    expect(lossSum(base, again, batch).loss.dataSync()[0]).toBe(lossSum(base, lora, batch).loss.dataSync()[0]);
    lora.dispose();
    again.dispose();
    disposeBaseModel(base);
  });

  it('reads the rank from the shapes and reports inconsistent or foreign tensors', async () => {
    const base = await tinyModel({ family: 'llama' });
    const lora = initLora(base, loraConfig({ rank: 2, alpha: 4, targets: ['q_proj', 'down_proj'], dropout: 0.05 }), 0);
    const dir = tmpDir('adapter');
    saveAdapter(dir, lora, lora.cfg, base.dir);
    expect(loadAdapter(dir).cfg).toEqual({
      rank: 2,
      alpha: 4,
      targets: ['q_proj', 'down_proj'],
      dropout: 0.05,
      useRslora: false,
    });
    const f = path.join(dir, 'adapter_model.safetensors');
    const t = (shape: number[]) => ({ shape, data: new Float32Array(shape[0] * shape[1]) });
    writeSafetensors(f, {
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': t([2, 32]),
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': t([32, 4]),
    });
    expect(() => loadAdapter(dir)).toThrow(/inconsistent with rank 2/);
    const bad = new Map([['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', t([2, 32])]]);
    expect(() => loraFromTensors(base, bad, { alpha: 4, dropout: 0, useRslora: false }, 'x.safetensors')).toThrow(
      /^x.safetensors: model.layers.0.self_attn.q_proj has lora_A but no lora_B/,
    );
    const wrong = new Map([
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', t([2, 31])],
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', t([32, 2])],
    ]);
    expect(() => loraFromTensors(base, wrong, { alpha: 4, dropout: 0, useRslora: false }, 'x.safetensors')).toThrow(
      /lora_A.weight has shape \[2,31\], expected \[2,32\]/,
    );
    const foreign = new Map([['model.embed_tokens.weight', t([48, 32])]]);
    expect(() => loraFromTensors(base, foreign, { alpha: 4, dropout: 0, useRslora: false }, 'x.safetensors')).toThrow(
      /not a LoRA weight in PEFT naming/,
    );
    // PEFT fields one alpha and rank cannot express are refused, not ignored (empty ones, as PEFT writes, are fine).
    const cfile = path.join(dir, 'adapter_config.json');
    saveAdapter(dir, lora, lora.cfg, base.dir);
    const saved = JSON.parse(fs.readFileSync(cfile, 'utf8'));
    for (const [extra, msg] of [
      [{ alpha_pattern: {}, rank_pattern: {}, use_dora: false }, null],
      [{ alpha_pattern: { q_proj: 64 } }, '"alpha_pattern" {"q_proj":64} is not supported (per-module alpha)'],
      [{ rank_pattern: { down_proj: 4 } }, '"rank_pattern" {"down_proj":4} is not supported (per-module rank)'],
      [{ use_dora: true }, '"use_dora": true (DoRA) is not supported; expected LoRA'],
    ] as const) {
      fs.writeFileSync(cfile, JSON.stringify({ ...saved, ...extra }));
      if (msg) expect(() => loadAdapter(dir)).toThrow(`${cfile}: ${msg}`);
      else expect(loadAdapter(dir).cfg.alpha).toBe(4);
    }
    // No lora_alpha: PEFT's LoraConfig default, 8, whatever the rank (it was 2 * r, 4 here).
    fs.writeFileSync(cfile, JSON.stringify({ ...saved, lora_alpha: undefined }));
    expect(loadAdapter(dir).cfg.alpha).toBe(8);
    expect(() => loadAdapter(tmpDir('none'))).toThrow(
      /adapter_config.json: no such file \(expected a PEFT adapter directory\)/,
    );
    lora.dispose();
    disposeBaseModel(base);
  });
});
