// `lorasft merge --base-model DIR --adapter ADIR --out DIR`: base + adapter as a new HF model dir.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { parseFlags } from '../util/args.ts';
import { mergeAdapter } from '../infer/merge.ts';
import {
  adapterBaseModel,
  realPath,
  requireAdapterDir,
  requireModelDir,
  requireOutputDir,
  withFsErrors,
} from '../util/paths.ts';

const HELP = `usage: lorasft merge [--base-model DIR] --adapter ADIR --out DIR [--dtype f32|bf16] [--overwrite]

Writes DIR/model.safetensors with W + (alpha/r) * B @ A for every adapted linear layer (PEFT's merge_and_unload),
and copies config.json and the tokenizer files. Each weight keeps the dtype the base stored it in (merged in f32,
rounded once) and config.json its torch_dtype; --dtype writes every weight as f32 or bf16 and sets torch_dtype.
--base-model defaults to the adapter's base_model_name_or_path.
A non-empty --out is refused unless --overwrite is given, which replaces the model there (the files of the previous
model that the merged one lacks, e.g. shards or generation_config.json, are removed; other files stay).`;

export const run = withFsErrors(async (argv: string[]): Promise<number> => {
  const { values: v, positionals } = parseFlags('merge', argv, {
    'base-model': { type: 'string' },
    adapter: { type: 'string' },
    out: { type: 'string' },
    dtype: { type: 'string' },
    overwrite: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length) throw new UserError(`lorasft merge: unexpected argument '${positionals[0]}'`);
  if (!v.adapter || !v.out) throw new UserError('lorasft merge: --adapter ADIR and --out DIR are required');
  if (v.dtype && !['f32', 'bf16'].includes(v.dtype))
    throw new UserError(`--dtype: expected f32 or bf16, got '${v.dtype}'`);
  // Every path checked before the (slow) merge and before anything is written.
  requireAdapterDir(v.adapter, '--adapter');
  const base = v['base-model'] ?? adapterBaseModel(v.adapter, '--adapter');
  requireModelDir(base, '--base-model');
  requireOutputDir(v.out, '--out');
  for (const [dir, what] of [
    [base, 'the base model dir'],
    [v.adapter, 'the adapter dir'],
  ]) {
    if (realPath(v.out) === realPath(dir)) throw new UserError(`--out ${v.out}: must differ from ${what}`);
  }
  const present = fs.existsSync(v.out) ? fs.readdirSync(v.out) : [];
  if (present.length && !v.overwrite) {
    throw new UserError(
      `${v.out}: not empty (${present.slice(0, 3).join(', ')}${present.length > 3 ? ', ...' : ''}); choose another --out, or pass --overwrite to write into it`,
    );
  }
  const dtype = v.dtype === undefined ? undefined : v.dtype === 'bf16' ? 'BF16' : 'F32';
  const r = mergeAdapter(base, v.adapter, v.out, { dtype });
  console.log(
    `merged ${r.merged.length} LoRA modules into ${r.tensors} tensors: ${path.join(v.out, 'model.safetensors')}`,
  );
  return 0;
});
