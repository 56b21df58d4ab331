// Merge a LoRA adapter into its base model: W' = W + s * B @ A for every adapted linear (s = alpha/r, or
// alpha/sqrt(r) with rsLoRA), written as a new HF model dir (config, tokenizer and other files copied), the
// same result as PEFT's merge_and_unload(). Tensors are held in memory while writing: fine for the small
// models this trainer targets.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { PEFT_PREFIX } from '../model/lora.ts';
import { loadAdapter } from '../model/peft.ts';
import { listModelTensors, readSafetensors, writeSafetensors, type FloatTensor } from '../model/safetensors.ts';
import { writeFileAtomic } from '../util/atomic.ts';

/** W [out, in] += s * B [out, r] @ A [r, in], accumulated in float64 per element. */
function addLoraDelta(W: FloatTensor, A: FloatTensor, B: FloatTensor, s: number): void {
  const [out, inp] = W.shape;
  const r = A.shape[0];
  if (A.shape[1] !== inp || B.shape[0] !== out || B.shape[1] !== r) {
    throw new UserError(`adapter shapes A [${A.shape}] / B [${B.shape}] do not fit weight [${W.shape}]`);
  }
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
  const s = cfg.useRslora ? cfg.alpha / Math.sqrt(cfg.rank) : cfg.alpha / cfg.rank;
  const index = listModelTensors(baseDir);
  const files = new Set([...index.values()].map((e) => e.file));
  const tensors = new Map<string, FloatTensor>();
  for (const f of files)
    for (const [name, t] of readSafetensors(f)) tensors.set(name, { shape: t.shape, data: t.data });

  const merged: string[] = [];
  for (const [name, A] of lora) {
    if (!name.endsWith('.lora_A.weight')) continue;
    const module = name.slice(PEFT_PREFIX.length, -'.lora_A.weight'.length); // model.layers.0.self_attn.q_proj
    const B = lora.get(name.replace('.lora_A.', '.lora_B.'));
    const W = tensors.get(`${module}.weight`);
    if (!B) throw new UserError(`${adapterDir}: ${name} has no matching lora_B`);
    if (!W) throw new UserError(`${adapterDir}: adapter targets ${module}, which ${baseDir} does not have`);
    addLoraDelta(W, A, B, s);
    merged.push(module);
  }
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
  return { merged, tensors: tensors.size };
}
