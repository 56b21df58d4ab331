// Hugging Face config.json -> ModelConfig for the decoder families lorasft implements (Qwen3, Qwen2, Llama, Mistral,
// Gemma 3 text; the Gemma/Mistral-only fields come from families.ts).
import * as path from 'node:path';
import { UserError } from '../errors.ts';
import { readJsonObject, requireDir } from '../util/files.ts';
import { gemma3Fields, llamaFields, mistralFields, refuseMultimodal, type FamilyFields } from './families.ts';

type ModelType = 'qwen3' | 'qwen2' | 'llama' | 'mistral' | 'gemma3_text';
const MODEL_TYPES: readonly ModelType[] = ['qwen3', 'qwen2', 'llama', 'mistral', 'gemma3_text'];

/** RoPE frequency scaling (HF `rope_scaling`); 'default' = none. */
type RopeScaling =
  | { type: 'default' }
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export interface ModelConfig extends FamilyFields {
  modelType: ModelType;
  vocabSize: number;
  hiddenSize: number; // C
  intermediateSize: number;
  numLayers: number;
  numHeads: number; // H
  numKvHeads: number; // Hkv (GQA: H % Hkv == 0)
  headDim: number; // D
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Bias on q/k/v projections (Qwen2 always; Llama/Qwen3 `attention_bias`). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama `attention_bias`). */
  oBias: boolean;
  /** Bias on gate/up/down (Llama `mlp_bias`). */
  mlpBias: boolean;
  /** Qwen3, Gemma 3: RMSNorm over D on q and k before RoPE. */
  qkNorm: boolean;
  bosTokenId: number | null;
  eosTokenId: number[];
}

type Json = Record<string, unknown>;

function num(file: string, j: Json, key: string, dflt?: number): number {
  const v = j[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new UserError(
      `${file}: "${key}" ${v === undefined ? 'is missing' : `is ${JSON.stringify(v)}`}; expected a number`,
    );
  }
  return v;
}

function posInt(file: string, j: Json, key: string, dflt?: number): number {
  const v = num(file, j, key, dflt);
  if (!Number.isInteger(v) || v <= 0) throw new UserError(`${file}: "${key}" is ${v}; expected a positive integer`);
  return v;
}

function parseRopeScaling(file: string, rs: unknown): RopeScaling {
  if (rs === null || rs === undefined) return { type: 'default' };
  if (typeof rs !== 'object') throw new UserError(`${file}: "rope_scaling" must be an object or null`);
  const r = rs as Json;
  const type = (r.rope_type ?? r.type ?? 'default') as string;
  if (type === 'default') return { type: 'default' };
  if (type === 'linear') return { type: 'linear', factor: num(file, r, 'factor') };
  if (type === 'llama3') {
    return {
      type: 'llama3',
      factor: num(file, r, 'factor'),
      lowFreqFactor: num(file, r, 'low_freq_factor'),
      highFreqFactor: num(file, r, 'high_freq_factor'),
      originalMaxPositionEmbeddings: num(file, r, 'original_max_position_embeddings'),
    };
  }
  throw new UserError(`${file}: rope_scaling type '${type}' is not supported (supported: default, linear, llama3)`);
}

/** Parse a config.json object; `file` names it in errors. */
export function parseModelConfig(j: Json, file: string): ModelConfig {
  const modelType = j.model_type as ModelType;
  refuseMultimodal(file, j);
  if (!MODEL_TYPES.includes(modelType)) {
    throw new UserError(
      `${file}: model_type ${JSON.stringify(j.model_type)} is not supported (supported: ${MODEL_TYPES.join(', ')})`,
    );
  }
  if (j.use_sliding_window === true) throw new UserError(`${file}: use_sliding_window: true is not supported`);
  const hiddenSize = posInt(file, j, 'hidden_size');
  const numHeads = posInt(file, j, 'num_attention_heads');
  const numKvHeads = posInt(file, j, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0)
    throw new UserError(
      `${file}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  const gemma = modelType === 'gemma3_text';
  // Gemma3TextConfig defaults head_dim to 256 (not hidden / heads).
  const headDim = j.head_dim == null ? (gemma ? 256 : hiddenSize / numHeads) : posInt(file, j, 'head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0)
    throw new UserError(`${file}: head dim ${headDim} must be an even integer`);
  // transformers v5 moves rope settings into "rope_parameters".
  // Gemma 3 (v5) nests them per layer type: the global rope is rope_parameters.full_attention.
  const rpAll = (j.rope_parameters ?? null) as Json | null;
  const rp = (gemma && rpAll?.full_attention ? rpAll.full_attention : rpAll) as Json | null;
  const ropeTheta = num(file, rp && rp.rope_theta !== undefined ? rp : j, 'rope_theta', gemma ? 1e6 : 10000);
  const ropeScaling = parseRopeScaling(file, j.rope_scaling ?? rp);
  // MistralAttention has no biases whatever the config says.
  const attnBias = modelType !== 'mistral' && j.attention_bias === true;
  const numLayers = posInt(file, j, 'num_hidden_layers');
  const family: FamilyFields = gemma
    ? gemma3Fields(file, j, numLayers, hiddenSize)
    : modelType === 'mistral'
      ? mistralFields(file, j, numLayers)
      : llamaFields(file, j, numLayers);
  const eos = j.eos_token_id;
  const eosTokenId = Array.isArray(eos) ? (eos as number[]) : typeof eos === 'number' ? [eos] : [];
  return {
    modelType,
    vocabSize: posInt(file, j, 'vocab_size'),
    hiddenSize,
    intermediateSize: posInt(file, j, 'intermediate_size'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: num(file, j, 'rms_norm_eps', 1e-6),
    ropeTheta,
    ropeScaling,
    maxPositionEmbeddings: posInt(file, j, 'max_position_embeddings', 32768),
    // Qwen3Config, Qwen2Config, LlamaConfig and MistralConfig default tie_word_embeddings to false, Gemma3TextConfig to true.
    tieWordEmbeddings: gemma ? j.tie_word_embeddings !== false : j.tie_word_embeddings === true,
    qkvBias: modelType === 'qwen2' || attnBias,
    oBias: modelType !== 'qwen2' && attnBias,
    mlpBias: modelType === 'llama' && j.mlp_bias === true,
    qkNorm: modelType === 'qwen3' || gemma,
    bosTokenId: typeof j.bos_token_id === 'number' ? j.bos_token_id : null,
    eosTokenId,
    ...family,
  };
}

/** Read `DIR/config.json`. */
export function loadModelConfig(dir: string): ModelConfig {
  requireDir(dir, 'a Hugging Face model directory with config.json');
  const file = path.join(dir, 'config.json');
  return parseModelConfig(readJsonObject(file, 'expected a Hugging Face model directory with config.json'), file);
}
