// Merge a LoRA adapter into its base model: W' = W + s * B @ A for every adapted linear (s = alpha/r, or
// alpha/sqrt(r) with rsLoRA), written as a new HF model dir (config, tokenizer and other files copied), the
// same result as PEFT's merge_and_unload(). Tensors are held in memory while writing: fine for the small
// models this trainer targets.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { loadModelConfig } from '../model/config.ts';
import { checkLoraTensors, type LoraPair } from '../model/lora.ts';
import { loadAdapter } from '../model/peft.ts';
import { listModelTensors, readSafetensors, writeSafetensors, type FloatTensor } from '../model/safetensors.ts';
import { writeFileAtomic } from '../util/atomic.ts';

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

export function mergeAdapter(
  baseDir: string,
  adapterDir: string,
  outDir: string,
  opts: { dtype?: 'F32' | 'BF16' } = {},
): MergeResult {
  if (path.resolve(outDir) === path.resolve(baseDir))
    throw new UserError(`--out ${outDir}: must differ from the base model dir`);
  const { lora, cfg } = loadAdapter(adapterDir);
  // The same check as generate's: every A/B pair against the base's config.json, before any weight is read.
  const { pairs } = checkLoraTensors(loadModelConfig(baseDir), lora, cfg.rank, adapterDir);
  const s = cfg.useRslora ? cfg.alpha / Math.sqrt(cfg.rank) : cfg.alpha / cfg.rank;
  const index = listModelTensors(baseDir);
  checkBaseWeights(pairs, index, baseDir, adapterDir);
  const files = new Set([...index.values()].map((e) => e.file));
  const tensors = new Map<string, FloatTensor>();
  for (const f of files)
    for (const [name, t] of readSafetensors(f)) tensors.set(name, { shape: t.shape, data: t.data });
  for (const { module, A, B } of pairs) addLoraDelta(tensors.get(`${module}.weight`)!, A, B, s);
  fs.mkdirSync(outDir, { recursive: true });
  // Everything but the weights is copied as-is (config, tokenizer, generation config, chat template, ...).
  for (const f of fs.readdirSync(baseDir)) {
    const src = path.join(baseDir, f);
    if (!fs.statSync(src).isFile() || f.endsWith('.safetensors') || f === 'model.safetensors.index.json') continue;
    fs.copyFileSync(src, path.join(outDir, f));
  }
  const dtype = opts.dtype ?? 'F32';
  const cfgFile = path.join(outDir, 'config.json');
  if (fs.existsSync(cfgFile)) {
    const c = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    c.torch_dtype = dtype === 'F32' ? 'float32' : 'bfloat16';
    writeFileAtomic(cfgFile, JSON.stringify(c, null, 2) + '\n');
  }
  writeSafetensors(
    path.join(outDir, 'model.safetensors'),
    tensors,
    { format: 'pt', merged_from: `${baseDir} + ${adapterDir}` },
    { dtype },
  );
  return { merged: pairs.map((p) => p.module), tensors: tensors.size };
}
