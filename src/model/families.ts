// Per-family config.json fields beyond the Llama layer: Gemma 3 text (modeling_gemma3.py, Gemma3TextConfig) and
// Mistral (modeling_mistral.py, MistralConfig). Returns the ModelConfig fields that differ from the Llama defaults.
import { UserError } from '../errors.ts';

type Json = Record<string, unknown>;

/** Fields of ModelConfig that only some families set; `LLAMA_LAYER` is the value every other family has. */
export interface FamilyFields {
  /** Gemma: RMSNorm scales by (1 + weight) (weights are stored zero-centred). */
  normPlusOne: boolean;
  /** Gemma: the embedding output is multiplied by sqrt(C), rounded to the model dtype as HF does; 1 otherwise. */
  embedScale: number;
  /** MLP activation on gate: silu (SwiGLU) or GeLU with the tanh approximation (HF gelu_pytorch_tanh). */
  hiddenAct: 'silu' | 'gelu_tanh';
  /** Attention score scale; null = 1/sqrt(D) (Gemma: query_pre_attn_scalar^-0.5). */
  attnScale: number | null;
  /** Sliding window of each layer (0 = full causal attention). */
  layerWindows: number[];
  /** RoPE theta of the sliding-window layers (Gemma rope_local_base_freq, no scaling); null = the global rope. */
  ropeLocalTheta: number | null;
  /** Gemma: norms after attention and around the MLP (post_attention, pre_feedforward, post_feedforward). */
  sandwichNorm: boolean;
  /** Gemma final_logit_softcapping: logits = cap * tanh(logits / cap); null = none. */
  finalLogitSoftcap: number | null;
}

function llamaLayer(numLayers: number): FamilyFields {
  return {
    normPlusOne: false,
    embedScale: 1,
    hiddenAct: 'silu',
    attnScale: null,
    layerWindows: new Array(numLayers).fill(0),
    ropeLocalTheta: null,
    sandwichNorm: false,
    finalLogitSoftcap: null,
  };
}

const F16_MANT = 10,
  BF16_MANT = 7;

/** x rounded to nearest-even with `bits` mantissa bits (bf16: 7, fp16: 10; normal range). */
function roundMantissa(x: number, bits: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const e = Math.floor(Math.log2(Math.abs(x)));
  const ulp = 2 ** (e - bits);
  const q = x / ulp;
  const f = Math.floor(q);
  const r = q - f > 0.5 || (q - f === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return r * ulp;
}

/**
 * HF Gemma3TextScaledWordEmbedding: torch.tensor(C ** 0.5) (float32) cast to the weights' dtype, so sqrt(1152)
 * becomes 33.94112... in float32 and 34.0 in bfloat16. The dtype is config.json's torch_dtype (or dtype).
 */
function gemmaEmbedScale(hidden: number, dtype: unknown): number {
  const s = Math.fround(Math.sqrt(hidden));
  if (dtype === 'bfloat16') return roundMantissa(s, BF16_MANT);
  if (dtype === 'float16') return roundMantissa(s, F16_MANT);
  return s;
}

function numOr(file: string, j: Json, key: string, dflt: number | null): number | null {
  const v = j[key] === undefined ? dflt : j[key]; // an explicit null stays null
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new UserError(
      `${file}: "${key}" is ${JSON.stringify(v)}; expected a positive number${dflt === null ? ' or null' : ''}`,
    );
  return v;
}

function windowOf(file: string, j: Json, dflt: number | null): number {
  const w = numOr(file, j, 'sliding_window', dflt);
  if (w !== null && !Number.isInteger(w))
    throw new UserError(`${file}: "sliding_window" is ${w}; expected a positive integer or null`);
  return w ?? 0;
}

/** Gemma 3 layer kinds: config layer_types, or HF's default pattern (every sliding_window_pattern-th layer is global). */
function gemmaLayerTypes(file: string, j: Json, numLayers: number): boolean[] {
  const lt = j.layer_types;
  if (lt === undefined || lt === null) {
    const pattern = (j.sliding_window_pattern ?? j._sliding_window_pattern ?? 6) as number;
    if (!Number.isInteger(pattern) || pattern <= 0)
      throw new UserError(
        `${file}: "sliding_window_pattern" is ${JSON.stringify(pattern)}; expected a positive integer`,
      );
    return Array.from({ length: numLayers }, (_, i) => (i + 1) % pattern !== 0);
  }
  if (!Array.isArray(lt) || lt.length !== numLayers)
    throw new UserError(`${file}: "layer_types" must be a list of ${numLayers} entries (one per layer)`);
  return lt.map((t, i) => {
    if (t !== 'sliding_attention' && t !== 'full_attention')
      throw new UserError(
        `${file}: "layer_types"[${i}] is ${JSON.stringify(t)}; expected "sliding_attention" or "full_attention"`,
      );
    return t === 'sliding_attention';
  });
}

/** Gemma3TextConfig: the fields above plus its own defaults (head_dim 256, rope_theta 1e6, tied embeddings). */
export function gemma3Fields(file: string, j: Json, numLayers: number, hidden: number): FamilyFields {
  // Gemma3MLP reads hidden_activation only (a stray hidden_act is ignored, as in HF).
  const act = j.hidden_activation ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh' && act !== 'gelu_tanh')
    throw new UserError(
      `${file}: hidden_activation ${JSON.stringify(act)} is not supported for gemma3_text (expected "gelu_pytorch_tanh")`,
    );
  if (j.attn_logit_softcapping != null)
    throw new UserError(
      `${file}: "attn_logit_softcapping" ${JSON.stringify(j.attn_logit_softcapping)} is not supported (Gemma 3 sets null)`,
    );
  if (j.use_bidirectional_attention === true)
    throw new UserError(`${file}: "use_bidirectional_attention": true is not supported (causal language models only)`);
  const window = windowOf(file, j, 4096);
  if (window === 0)
    throw new UserError(`${file}: "sliding_window" is null; Gemma 3's local layers need a window (HF default 4096)`);
  const sliding = gemmaLayerTypes(file, j, numLayers);
  // transformers v5 keeps the local base in rope_parameters.sliding_attention.
  const rp = (j.rope_parameters ?? null) as Json | null;
  const local = (rp?.sliding_attention ?? null) as Json | null;
  return {
    normPlusOne: true,
    embedScale: gemmaEmbedScale(hidden, j.torch_dtype ?? j.dtype),
    hiddenAct: 'gelu_tanh',
    attnScale: 1 / Math.sqrt(numOr(file, j, 'query_pre_attn_scalar', 256)!),
    layerWindows: sliding.map((s) => (s ? window : 0)),
    ropeLocalTheta: numOr(file, local ?? j, local ? 'rope_theta' : 'rope_local_base_freq', 10000),
    sandwichNorm: true,
    finalLogitSoftcap: numOr(file, j, 'final_logit_softcapping', null),
  };
}

/** Qwen3/Qwen2/Llama: the Llama layer. Their MLPs apply ACT2FN[hidden_act], of which SiLU ("silu", "swish") is implemented. */
export function llamaFields(file: string, j: Json, numLayers: number): FamilyFields {
  const act = j.hidden_act ?? 'silu';
  if (act !== 'silu' && act !== 'swish')
    throw new UserError(
      `${file}: hidden_act ${JSON.stringify(act)} is not supported for ${j.model_type} (expected "silu" or "swish")`,
    );
  return llamaLayer(numLayers);
}

/** MistralConfig: Llama's layer with an optional sliding window on every layer. */
export function mistralFields(file: string, j: Json, numLayers: number): FamilyFields {
  return { ...llamaFields(file, j, numLayers), layerWindows: new Array(numLayers).fill(windowOf(file, j, null)) };
}

/** Gemma3ForConditionalGeneration (vision + language) is refused in one line naming the text-only alternative. */
export function refuseMultimodal(file: string, j: Json): void {
  if (j.model_type === 'gemma3') {
    throw new UserError(
      `${file}: model_type "gemma3" (Gemma3ForConditionalGeneration, vision + language) is not supported; use a text-only Gemma 3 checkpoint (model_type "gemma3_text", Gemma3ForCausalLM, e.g. gemma-3-270m or gemma-3-1b)`,
    );
  }
}
