// CLI of the tiny-model generator (the library is src/model/tiny.ts):
//   scripts/make-tiny-model --family qwen3 --out DIR [--tokenizer qwen3|llama3|gemma3|mistral_nemo|none] [--vocab N]
//     [--hidden 64 --layers 2 --heads 4 --kv-heads 2 --intermediate 128 --head-dim D] [--seed S] [--tie true|false]
//     [--dtype f32|bf16] [--std 0.02] [--sliding-window N] [--overwrite]
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { UserError } from '../src/errors.ts';
import {
  makeTinyModel,
  TINY_FAMILIES,
  TOKENIZER_NAMES,
  type TinyFamily,
  type TokenizerName,
} from '../src/model/tiny.ts';

function main(argv: string[]): void {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      family: { type: 'string' },
      out: { type: 'string' },
      tokenizer: { type: 'string' },
      vocab: { type: 'string' },
      hidden: { type: 'string' },
      layers: { type: 'string' },
      heads: { type: 'string' },
      'kv-heads': { type: 'string' },
      intermediate: { type: 'string' },
      'head-dim': { type: 'string' },
      seed: { type: 'string' },
      tie: { type: 'string' },
      dtype: { type: 'string' },
      std: { type: 'string' },
      'sliding-window': { type: 'string' },
      overwrite: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (v.help || !v.family || !v.out) {
    console.log(
      'usage: make-tiny-model --family qwen3|qwen2|llama|mistral|gemma3 --out DIR [--tokenizer qwen3|llama3|gemma3|mistral_nemo|none] [--vocab N]\n' +
        '  [--hidden 64 --layers 2 --heads 4 --kv-heads 2 --intermediate 128 --head-dim D] [--seed 0] [--tie true|false] [--dtype f32|bf16] [--std 0.02]\n' +
        '  [--sliding-window N] (mistral: every layer, default none; gemma3: the local layers, default 8)\n' +
        '  [--overwrite] (a non-empty --out is refused without it; with it, the previous model files there are replaced)',
    );
    process.exitCode = v.help ? 0 : 1;
    return;
  }
  const int = (s: string | undefined, name: string) => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} ${s}: expected a non-negative integer`);
    return n;
  };
  const stdFlag = (s: string) => {
    const n = s.trim() === '' ? NaN : Number(s);
    if (!(Number.isFinite(n) && n >= 0)) throw new UserError(`--std ${s}: expected a number >= 0`);
    return n;
  };
  if (!TINY_FAMILIES.includes(v.family as TinyFamily))
    throw new Error(`--family ${v.family}: expected ${TINY_FAMILIES.join(', ')}`);
  if (v.tokenizer && !TOKENIZER_NAMES.includes(v.tokenizer as TokenizerName))
    throw new Error(`--tokenizer ${v.tokenizer}: expected ${TOKENIZER_NAMES.join(', ')}`);
  if (v.tie && !['true', 'false'].includes(v.tie)) throw new Error(`--tie ${v.tie}: expected true or false`);
  if (v.dtype && !['f32', 'bf16'].includes(v.dtype)) throw new Error(`--dtype ${v.dtype}: expected f32 or bf16`);
  const { dir, config } = makeTinyModel({
    family: v.family as TinyFamily,
    out: v.out,
    tokenizer: v.tokenizer as TokenizerName | undefined,
    vocab: int(v.vocab, 'vocab'),
    hidden: int(v.hidden, 'hidden'),
    layers: int(v.layers, 'layers'),
    heads: int(v.heads, 'heads'),
    kvHeads: int(v['kv-heads'], 'kv-heads'),
    intermediate: int(v.intermediate, 'intermediate'),
    headDim: int(v['head-dim'], 'head-dim'),
    seed: int(v.seed, 'seed'),
    tie: v.tie === undefined ? undefined : v.tie === 'true',
    dtype: v.dtype as 'f32' | 'bf16' | undefined,
    std: v.std === undefined ? undefined : stdFlag(v.std),
    slidingWindow: v['sliding-window'] === undefined ? undefined : int(v['sliding-window'], 'sliding-window'),
    overwrite: v.overwrite,
  });
  console.log(
    `wrote ${config.model_type} model (vocab ${config.vocab_size}, hidden ${config.hidden_size}, layers ${config.num_hidden_layers}) to ${dir}`,
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
