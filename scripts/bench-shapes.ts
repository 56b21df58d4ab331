// The model shapes the benchmarks draw random weights for, the random model and LoRA they run, and their
// command-line helpers (scripts/bench-step.ts, scripts/bench-infer.ts).
import * as tf from '@tensorflow/tfjs-core';
import { expectedWeights, type BaseModel } from '../src/model/model.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { DEFAULT_LORA_TARGETS, initLora, type LoraWeights } from '../src/model/lora.ts';
import { ropeInvFreq } from '../src/model/rope.ts';
import { bf16Tensor } from '../src/ops/index.ts';
import { mulberry32 } from '../src/util/random.ts';

// HF config.json fields of the benchmarked shapes (random weights of these sizes).
export const MODEL_SHAPES: Record<string, Record<string, unknown>> = {
  'smollm2-135m': {
    model_type: 'llama',
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    vocab_size: 49152,
    tie_word_embeddings: true,
    rope_theta: 100000,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 8192,
  },
  'qwen3-0.6b': {
    model_type: 'qwen3',
    hidden_size: 1024,
    intermediate_size: 3072,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    vocab_size: 151936,
    tie_word_embeddings: true,
    rope_theta: 1000000,
    rms_norm_eps: 1e-6,
    max_position_embeddings: 40960,
  },
  'qwen3-1.7b': {
    model_type: 'qwen3',
    hidden_size: 2048,
    intermediate_size: 6144,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    vocab_size: 151936,
    tie_word_embeddings: true,
    rope_theta: 1000000,
    rms_norm_eps: 1e-6,
    max_position_embeddings: 40960,
  },
  'llama3-8b': {
    model_type: 'llama',
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    vocab_size: 128256,
    tie_word_embeddings: false,
    rope_theta: 500000,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 8192,
  },
};

/** The value after `name` on the command line, else `dflt`. */
export function flag(name: string, dflt?: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

/** `--shape NAME` looked up in `shapes` (exits with one line naming the choices when unknown). */
export function shapeFlag(shapes: Record<string, Record<string, unknown>>, dflt: string): string {
  const shape = flag('--shape', dflt)!;
  if (!shapes[shape]) {
    console.error(`--shape: unknown shape '${shape}', expected one of ${Object.keys(shapes).join(', ')}`);
    process.exit(1);
  }
  return shape;
}

/**
 * A base model of `config`'s shape with weights uniform in [-0.035, 0.035) (values do not matter for speed) and
 * norms at 1. `bf16`: each 2-D weight is rounded to bf16 as it is drawn, so no float32 copy of it exists.
 */
export function randomBase(config: ModelConfig, bf16 = false, seed = 12345): BaseModel {
  const next = mulberry32(seed);
  const f1 = new Float32Array(1),
    u1 = new Uint32Array(f1.buffer);
  const weights = new Map<string, tf.Tensor>();
  for (const [name, shp] of expectedWeights(config)) {
    const n = shp.reduce((a, b) => a * b, 1);
    const half = bf16 && shp.length === 2 && !name.endsWith('norm.weight');
    const v = half ? new Uint16Array(n) : new Float32Array(n);
    if (name.endsWith('norm.weight')) v.fill(1);
    else
      for (let i = 0; i < n; i++) {
        f1[0] = (next() * 2 - 1) * 0.035;
        v[i] = half ? (u1[0] + 0x7fff + ((u1[0] >>> 16) & 1)) >>> 16 : f1[0];
      }
    weights.set(name, half ? bf16Tensor(v as Uint16Array, shp) : tf.tensor(v as Float32Array, shp));
  }
  if (config.tieWordEmbeddings) weights.set('lm_head.weight', weights.get('model.embed_tokens.weight')!);
  return { config, dir: '(random)', weights, invFreq: ropeInvFreq(config), precision: bf16 ? 'bf16' : 'fp32' };
}

/** The benchmarks' LoRA: rank 8, alpha 16, on all 7 linears, no dropout. */
export function benchLora(base: BaseModel): LoraWeights {
  return initLora(base, { rank: 8, alpha: 16, targets: DEFAULT_LORA_TARGETS, dropout: 0, useRslora: false }, 1);
}
