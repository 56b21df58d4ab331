// PEFT adapter directory: adapter_config.json + adapter_model.safetensors (names base_model.model.<module>.lora_{A,B}.weight,
// A [r, in], B [out, r]), loadable by peft.PeftModel.from_pretrained.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { readJsonObject, requireDir } from '../util/files.ts';
import { loadModelConfig } from './config.ts';
import { DEFAULT_LORA_TARGETS, type LoraConfig } from './lora.ts';
import { readSafetensors, writeSafetensors, type FloatTensor } from './safetensors.ts';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
/** A missing lora_alpha means PEFT's LoraConfig default, 8 whatever r (peft/tuners/lora/config.py); not 2 * r. */
export const PEFT_DEFAULT_ALPHA = 8;

/** PEFT LoraConfig JSON for our config. */
function adapterConfigJson(cfg: LoraConfig, baseModelPath: string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModelPath,
    r: cfg.rank,
    lora_alpha: cfg.alpha,
    lora_dropout: cfg.dropout,
    target_modules: [...cfg.targets],
    bias: 'none',
    use_rslora: cfg.useRslora,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    use_dora: false,
  };
}

/** Tensors to write: from tf.Variables (anything with shape + dataSync) or plain arrays. */
type TensorLike = { shape: number[]; dataSync(): ArrayLike<number> } | FloatTensor;

function toFloat(t: TensorLike): FloatTensor {
  if ('data' in t && t.data instanceof Float32Array) return { shape: [...t.shape], data: t.data };
  return { shape: [...t.shape], data: Float32Array.from((t as { dataSync(): ArrayLike<number> }).dataSync()) };
}

/** Write DIR/adapter_config.json and DIR/adapter_model.safetensors (each atomically). */
export function saveAdapter(dir: string, lora: Map<string, TensorLike>, cfg: LoraConfig, baseModelPath: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const tensors = new Map<string, FloatTensor>();
  for (const [name, t] of lora) tensors.set(name, toFloat(t));
  writeSafetensors(path.join(dir, ADAPTER_WEIGHTS), tensors, { format: 'pt' });
  writeFileAtomic(
    path.join(dir, ADAPTER_CONFIG),
    JSON.stringify(adapterConfigJson(cfg, baseModelPath), null, 2) + '\n',
  );
}

/**
 * PEFT LoraConfig fields that change the math but that one rank, alpha and A/B pair per module cannot express:
 * refused in one line, not ignored (an ignored alpha_pattern merges with the wrong scale).
 */
function refuseUnsupported(cfile: string, j: Record<string, unknown>): void {
  for (const key of ['alpha_pattern', 'rank_pattern']) {
    const v = j[key];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Object.keys(v).length > 0))
      throw new UserError(
        `${cfile}: "${key}" ${JSON.stringify(v)} is not supported (per-module ${key === 'alpha_pattern' ? 'alpha' : 'rank'}); expected {} (one "${key === 'alpha_pattern' ? 'lora_alpha' : 'r'}" for every module)`,
      );
  }
  if (j.use_dora === true) throw new UserError(`${cfile}: "use_dora": true (DoRA) is not supported; expected LoRA`);
}

/** A PEFT adapter dir as read: its LoRA tensors, what they mean, and adapter_config.json itself (`config`). */
export interface LoadedAdapter {
  lora: Map<string, FloatTensor>;
  cfg: LoraConfig;
  baseModelPath: string | null;
  config: Record<string, unknown>;
}

/**
 * Read a PEFT LoRA adapter dir. Rank comes from the tensor shapes (and must agree with "r" when present). `config`:
 * its adapter_config.json when the caller has read it already.
 */
export function loadAdapter(dir: string, config?: Record<string, unknown>): LoadedAdapter {
  const cfile = path.join(dir, ADAPTER_CONFIG);
  requireDir(dir, 'a PEFT adapter directory (adapter_config.json + adapter_model.safetensors)');
  const j = config ?? readJsonObject(cfile, 'expected a PEFT adapter directory');
  if (j.peft_type !== undefined && j.peft_type !== 'LORA')
    throw new UserError(`${cfile}: peft_type ${JSON.stringify(j.peft_type)} is not supported (expected "LORA")`);
  refuseUnsupported(cfile, j);
  const wfile = path.join(dir, ADAPTER_WEIGHTS);
  const raw = readSafetensors(wfile);
  const lora = new Map<string, FloatTensor>();
  let rank: number | undefined;
  const targets = new Set<string>();
  for (const [name, t] of raw) {
    // PEFT saves without the adapter name; accept '.default.' too (state dicts of live models).
    const m = /\.(\w+)\.lora_([AB])(?:\.default)?\.weight$/.exec(name);
    if (!m)
      throw new UserError(
        `${wfile}: tensor '${name}' is not a LoRA weight (expected ...<module>.lora_A.weight / .lora_B.weight)`,
      );
    const r = m[2] === 'A' ? t.shape[0] : t.shape[1];
    if (t.shape.length !== 2 || (rank !== undefined && r !== rank))
      throw new UserError(`${wfile}: tensor '${name}' has shape [${t.shape}], inconsistent with rank ${rank}`);
    rank = r;
    targets.add(m[1]);
    lora.set(name.replace('.default.weight', '.weight'), { shape: t.shape, data: t.data });
  }
  if (rank === undefined) throw new UserError(`${wfile}: no LoRA tensors`);
  if (j.r !== undefined && j.r !== rank)
    throw new UserError(`${cfile}: "r" is ${j.r} but ${ADAPTER_WEIGHTS} has rank ${rank}`);
  const alpha = typeof j.lora_alpha === 'number' ? j.lora_alpha : PEFT_DEFAULT_ALPHA;
  const cfg: LoraConfig = {
    rank,
    alpha,
    targets: DEFAULT_LORA_TARGETS.filter((t) => targets.has(t)).concat(
      [...targets].filter((t) => !DEFAULT_LORA_TARGETS.includes(t)),
    ),
    dropout: typeof j.lora_dropout === 'number' ? j.lora_dropout : 0,
    useRslora: j.use_rslora === true,
  };
  const baseModelPath = typeof j.base_model_name_or_path === 'string' ? j.base_model_name_or_path : null;
  return { lora, cfg, baseModelPath, config: j };
}

/**
 * An adapter on a base model of another family (model_type) is refused, though its layer shapes may fit (a tiny
 * Qwen3 and a tiny Gemma 3 share them): checked when the adapter's base_model_name_or_path is a local model dir,
 * which can name the family it was trained on. Dirs move, so only the family is compared; the shapes are checked
 * when the tensors are.
 */
function checkFamily(adapterDir: string, baseModelPath: string | null, baseDir: string, ours: string): void {
  if (baseModelPath === null || !fs.existsSync(path.join(baseModelPath, 'config.json'))) return;
  let trained: unknown;
  try {
    trained = readJsonObject(path.join(baseModelPath, 'config.json')).model_type;
  } catch {
    return; // not a readable model dir (any more): the shapes decide
  }
  if (typeof trained !== 'string' || trained === ours) return;
  throw new UserError(
    `--base-model ${baseDir}: a ${ours} model, but the adapter ${adapterDir} was trained on ${baseModelPath}, a ${trained} model; pass --base-model ${baseModelPath}, or an adapter trained on a ${ours} model`,
  );
}

/**
 * An adapter of a shallower model fits the first layers of a deeper one of the same width: refused unless its
 * config adapts a subset of layers on purpose (PEFT's layers_to_transform or exclude_modules, or target_modules naming
 * module paths).
 */
function checkDepth(
  adapterDir: string,
  j: Record<string, unknown>,
  lora: Map<string, unknown>,
  numLayers: number,
): void {
  const targets = j.target_modules;
  const byPath =
    typeof targets === 'string' || (Array.isArray(targets) && targets.some((t) => String(t).includes('.')));
  if (j.layers_to_transform != null || j.exclude_modules != null || byPath) return;
  const layers = new Set([...lora.keys()].map((n) => Number(/\.layers\.(\d+)\./.exec(n)?.[1])));
  const missing = Array.from({ length: numLayers }, (_, i) => i).filter((i) => !layers.has(i));
  if (missing.length === 0 || missing.length === numLayers) return;
  throw new UserError(
    `${adapterDir}: LoRA weights for ${numLayers - missing.length} of the base model's ${numLayers} layers (none for layer ${missing[0]}) and no layers_to_transform: an adapter of a model with fewer layers; pass the --base-model it was trained on`,
  );
}

/**
 * The adapter was trained on a model like `baseDir`: same family, and every layer adapted (see above). Its
 * adapter_config.json is read here unless `adapter.config` holds it (loadAdapter's result does).
 */
export function checkAdapterBase(
  adapterDir: string,
  adapter: { lora: Map<string, unknown>; baseModelPath: string | null; config?: Record<string, unknown> },
  baseDir: string,
): void {
  const config = loadModelConfig(baseDir);
  checkFamily(adapterDir, adapter.baseModelPath, baseDir, config.modelType);
  const j = adapter.config ?? readJsonObject(path.join(adapterDir, ADAPTER_CONFIG));
  checkDepth(adapterDir, j, adapter.lora, config.numLayers);
}
