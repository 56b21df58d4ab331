// --warm-start-from: the adapter must have been trained on this base model. PEFT records the base as
// base_model_name_or_path (lorasft writes the absolute dir); a local dir must be the same model (same path, or
// a config.json equal in every architecture field), and the LoRA tensor shapes are checked when loaded.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { readJsonObject } from '../util/files.ts';
import { PEFT_DEFAULT_ALPHA } from '../model/peft.ts';

/** config.json fields that do not change the weights' meaning (HF writes them per save). */
const IGNORED = new Set(['_name_or_path', 'transformers_version', 'torch_dtype', 'architectures', 'use_cache']);

function configDiff(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  // model_type first: another family is the difference that explains the rest
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((k) => !IGNORED.has(k))
    .sort((x, y) => Number(y === 'model_type') - Number(x === 'model_type') || (x < y ? -1 : x > y ? 1 : 0));
  return keys
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => `${k} ${JSON.stringify(a[k])} vs ${JSON.stringify(b[k])}`);
}

/**
 * Check that the adapter in `adapterDir` was trained on `baseModel`; returns a one-line description of what it
 * is, throws UserError naming both models when it was trained on another one. `a`: its adapter_config.json when
 * the caller has read it already.
 */
export function checkWarmStartBase(
  adapterDir: string,
  baseModel: string,
  a = readJsonObject(path.join(adapterDir, 'adapter_config.json'), 'expected a PEFT adapter config'),
): string {
  const name = typeof a.base_model_name_or_path === 'string' ? a.base_model_name_or_path : '';
  const what = `LoRA r=${a.r} alpha=${a.lora_alpha ?? PEFT_DEFAULT_ALPHA} on ${Array.isArray(a.target_modules) ? a.target_modules.join(',') : a.target_modules}`;
  const ours = path.resolve(baseModel);
  if (!name) return `${what}; the adapter does not name its base model (tensor shapes are checked)`;
  if (!fs.existsSync(path.join(name, 'config.json')))
    return `${what}, trained on '${name}' (not a local dir: only tensor shapes can be checked)`;
  if (fs.realpathSync(name) === fs.realpathSync(ours)) return `${what}, trained on this base model`;
  const diff = configDiff(
    readJsonObject(path.join(name, 'config.json')),
    readJsonObject(path.join(ours, 'config.json')),
  );
  if (diff.length) {
    throw new UserError(
      `--warm-start-from ${adapterDir}: trained on base model ${name}, not on --base-model ${ours} (config.json differs: ${diff.slice(0, 3).join('; ')}${diff.length > 3 ? '; ...' : ''}); pass --base-model ${name}`,
    );
  }
  return `${what}, trained on ${name} (same config.json as ${ours})`;
}
