// --warm-start-from refuses an adapter trained on another base model, naming both (issue 8, item 7).
import { tmpDir } from '../helpers/index.ts';
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel } from '../../src/model/tiny.ts';
import { checkWarmStartBase } from '../../src/train/warm_start.ts';

const root = tmpDir('warm');
const modelA = path.join(root, 'a');
const modelB = path.join(root, 'b');
makeTinyModel({ family: 'qwen3', out: modelA, hidden: 32, layers: 1, heads: 2, kvHeads: 1, intermediate: 32 });
makeTinyModel({ family: 'qwen3', out: modelB, hidden: 64, layers: 1, heads: 2, kvHeads: 1, intermediate: 32 });

function adapterOn(base: string, name: string): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'adapter_config.json'),
    JSON.stringify({
      peft_type: 'LORA',
      r: 4,
      lora_alpha: 8,
      target_modules: ['q_proj', 'v_proj'],
      base_model_name_or_path: base,
    }),
  );
  return dir;
}

describe('warm start base model check', () => {
  it('accepts the adapter of this base model, or of a copy with the same config.json', () => {
    expect(checkWarmStartBase(adapterOn(modelA, 'ad1'), modelA)).toBe(
      'LoRA r=4 alpha=8 on q_proj,v_proj, trained on this base model',
    );
    const copy = path.join(root, 'copy');
    fs.cpSync(modelA, copy, { recursive: true });
    expect(checkWarmStartBase(adapterOn(modelA, 'ad2'), copy)).toMatch(
      /trained on .*\/a \(same config\.json as .*\/copy\)$/,
    );
  });

  it('refuses an adapter trained on another base model, naming both and what differs', () => {
    const ad = adapterOn(modelA, 'ad3');
    expect(() => checkWarmStartBase(ad, modelB)).toThrow(
      `--warm-start-from ${ad}: trained on base model ${modelA}, not on --base-model ${modelB} (config.json differs: head_dim 16 vs 32; hidden_size 32 vs 64); pass --base-model ${modelA}`,
    );
  });

  it('names the family first when the adapter is of another one', () => {
    const gemma = path.join(root, 'gemma');
    makeTinyModel({ family: 'gemma3', out: gemma, hidden: 32, layers: 1, heads: 2, kvHeads: 1, intermediate: 32 });
    expect(() => checkWarmStartBase(adapterOn(modelA, 'ad5'), gemma)).toThrow(
      /\(config\.json differs: model_type "qwen3" vs "gemma3_text"; /,
    );
  });

  it('says when the base cannot be verified by name (a hub id)', () => {
    expect(checkWarmStartBase(adapterOn('Qwen/Qwen3-0.6B', 'ad4'), modelA)).toMatch(
      /trained on 'Qwen\/Qwen3-0\.6B' \(not a local dir: only tensor shapes can be checked\)$/,
    );
  });
});
