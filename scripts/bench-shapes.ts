// The model shapes the benchmarks draw random weights for, and their command-line helpers
// (scripts/bench-step.ts, scripts/bench-infer.ts).

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
