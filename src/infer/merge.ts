// Merge a LoRA adapter into its base model: W' = W + s * B @ A for every adapted linear (s = alpha/r, or
// alpha/sqrt(r) with rsLoRA), written as a new HF model dir (config, tokenizer and other files copied), the
// same result as PEFT's merge_and_unload(), in the base's dtypes. Tensors are held in memory (as float32) while
// writing: fine for the small models this trainer targets.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { loadModelConfig } from '../model/config.ts';
import { checkLoraTensors, type LoraPair } from '../model/lora.ts';
import { checkAdapterBase, loadAdapter } from '../model/peft.ts';
import {
  listModelTensors,
  readSafetensors,
  writeSafetensors,
  type FloatTensor,
  type WriteDtype,
} from '../model/safetensors.ts';
import { removeStaleModelFiles } from '../model/model_dir.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { realPath } from '../util/paths.ts';

/** W [out, in] += s * B [out, r] @ A [r, in], accumulated in float64 per element (shapes checked by the caller). */
function addLoraDelta(W: FloatTensor, A: FloatTensor, B: FloatTensor, s: number): void {
  const [out, inp] = W.shape;
  const r = A.shape[0];
  const row = new Float64Array(inp);
  for (let o = 0; o < out; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const b = B.data[o * r + k];
      if (b === 0) continue;
      const a = A.data.subarray(k * inp, (k + 1) * inp);
      for (let i = 0; i < inp; i++) row[i] += b * a[i];
    }
    for (let i = 0; i < inp; i++) W.data[o * inp + i] += s * row[i];
  }
}

type ModelTensors = ReturnType<typeof listModelTensors>;

/** Every adapted weight exists in the base checkpoint with the [out, in] its A/B pair needs (read from the headers). */
function checkBaseWeights(pairs: LoraPair[], index: ModelTensors, baseDir: string, adapterDir: string): void {
  for (const { module, A, B } of pairs) {
    const w = index.get(`${module}.weight`);
    if (!w) throw new UserError(`${adapterDir}: adapter targets ${module}, which ${baseDir} does not have`);
    const want = [B.shape[0], A.shape[1]];
    if (w.info.shape.join() !== want.join())
      throw new UserError(
        `${w.file}: weight '${module}.weight' has shape [${w.info.shape}], config.json implies [${want}]`,
      );
  }
}

export interface MergeResult {
  merged: string[];
  tensors: number;
}

/** The base's tensors as float32 with the adapter merged in, and the dtype each was stored in. */
function readMerged(index: ModelTensors, pairs: LoraPair[], s: number) {
  const tensors = new Map<string, FloatTensor>();
  const stored = new Map<string, WriteDtype>();
  for (const f of new Set([...index.values()].map((e) => e.file)))
    for (const [name, t] of readSafetensors(f)) {
      tensors.set(name, { shape: t.shape, data: t.data });
      stored.set(name, t.dtype as WriteDtype); // readSafetensors reads F32, F16 and BF16 only
    }
  for (const { module, A, B } of pairs) addLoraDelta(tensors.get(`${module}.weight`)!, A, B, s);
  return { tensors, stored };
}

/** Everything but the weights is copied as-is (config, tokenizer, generation config, chat template, ...); returns the names. */
function copyModelFiles(baseDir: string, outDir: string): string[] {
  fs.mkdirSync(outDir, { recursive: true });
  const copied: string[] = [];
  for (const f of fs.readdirSync(baseDir)) {
    const src = path.join(baseDir, f);
    if (!fs.statSync(src).isFile() || f.endsWith('.safetensors') || f === 'model.safetensors.index.json') continue;
    fs.copyFileSync(src, path.join(outDir, f));
    copied.push(f);
  }
  return copied;
}

/** config.json's torch_dtype (and transformers v5's dtype, when present) set to an explicitly asked dtype. */
function setConfigDtype(outDir: string, dtype: WriteDtype): void {
  const cfgFile = path.join(outDir, 'config.json');
  if (!fs.existsSync(cfgFile)) return;
  const c = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  const name = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype];
  c.torch_dtype = name;
  if (c.dtype !== undefined) c.dtype = name;
  writeFileAtomic(cfgFile, JSON.stringify(c, null, 2) + '\n');
}

/**
 * Merge in float32, then write each weight rounded once (to nearest even) to the dtype the base stored it in, with
 * config.json as the base has it (PEFT's merge_and_unload keeps the base dtype), or all in `opts.dtype` when given.
 */
export function mergeAdapter(
  baseDir: string,
  adapterDir: string,
  outDir: string,
  opts: { dtype?: WriteDtype } = {},
): MergeResult {
  // Symlinks resolved: merging onto the base through a link would replace the base's weights with the merged ones.
  for (const [dir, what] of [
    [baseDir, 'the base model dir'],
    [adapterDir, 'the adapter dir'],
  ])
    if (realPath(outDir) === realPath(dir)) throw new UserError(`--out ${outDir}: must differ from ${what}`);
  const { lora, cfg, baseModelPath } = loadAdapter(adapterDir);
  checkAdapterBase(adapterDir, { lora, baseModelPath }, baseDir);
  // The same check as generate's: every A/B pair against the base's config.json, before any weight is read.
  const { pairs } = checkLoraTensors(loadModelConfig(baseDir), lora, cfg.rank, adapterDir);
  const index = listModelTensors(baseDir);
  checkBaseWeights(pairs, index, baseDir, adapterDir);
  const s = cfg.useRslora ? cfg.alpha / Math.sqrt(cfg.rank) : cfg.alpha / cfg.rank;
  const { tensors, stored } = readMerged(index, pairs, s);
  const present = fs.existsSync(outDir) ? fs.readdirSync(outDir) : [];
  const copied = copyModelFiles(baseDir, outDir);
  if (opts.dtype) setConfigDtype(outDir, opts.dtype);
  writeSafetensors(
    path.join(outDir, 'model.safetensors'),
    tensors,
    { format: 'pt', merged_from: `${baseDir} + ${adapterDir}` },
    { dtype: opts.dtype ?? ((name) => stored.get(name)!) },
  );
  // A model merged into a dir that held another (--overwrite): its shards, index, tokenizer or generation config go.
  removeStaleModelFiles(outDir, present, [...copied, 'model.safetensors']);
  return { merged: pairs.map((p) => p.module), tensors: tensors.size };
}
