// Qwen3 / Qwen2 / Llama / Mistral / Gemma 3 decoder with LoRA, following HF transformers modeling_{qwen3,qwen2,llama,
// mistral,gemma3}.py: embed -> L x [x += o_proj(attn(rope(norm_qk(q)), rope(norm_qk(k)), v)); x += down(act(gate) * up)]
// -> norm -> lm_head. Gemma 3 adds: embed * sqrt(C), (1 + w) norms, norms after attention and around the MLP, GeLU-tanh,
// sliding-window layers with their own RoPE base, query_pre_attn_scalar and logit soft-capping (src/model/gemma3.ts).
// Activations, LoRA and the loss are float32; base weights float32 or bf16 (src/model/precision.ts), plain tensors;
// only the LoRA A/B variables are trainable.
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.ts';
import {
  FusedAttention,
  GeluTanhMul,
  LoraLinear,
  RmsNorm,
  Rope,
  Swiglu,
  WeightedCrossEntropy,
} from '../kernel_names.ts';
import * as ops from '../ops/index.ts';
import { loadModelConfig, type ModelConfig } from './config.ts';
import { linearShape, type LoraWeights } from './lora.ts';
import { decoder, rmsNorm, weight, type Ctx } from './decoder.ts';
import { plusOneNorms, softcapLogits } from './gemma3.ts';
import { chunkedWeightedCE } from './loss.ts';
import { ropeInvFreq } from './rope.ts';
import { listModelTensors, readSafetensors } from './safetensors.ts';
import { keeps16, matMulWT, type Precision } from './precision.ts';

export interface BaseModel {
  config: ModelConfig;
  dir: string;
  /** HF names -> float32 tensors (bf16: 2-D weights packed bf16, see src/ops/matmul_bf16.ts); 'lm_head.weight'
   *  aliases the embedding when tied. */
  weights: Map<string, tf.Tensor>;
  /** Precision of the 2-D base weights (default fp32). */
  precision?: Precision;
  /** RoPE inverse frequencies [D/2] (scaling applied). */
  invFreq: Float64Array;
  /** Those of the sliding-window layers when they differ (Gemma rope_local_base_freq). */
  invFreqLocal?: Float64Array;
  /** Norm weights as applied when they differ from the stored ones (Gemma: 1 + w), by HF name. */
  norms?: Map<string, tf.Tensor>;
}

/**
 * B rows of T tokens, flattened row-major. weights[b*T+t] is the loss weight of predicting inputIds[b*T+t] from
 * the row's prefix (HF unshifted labels; 0 = ignored; t = 0 is never trained). positionIds restart at 0 (or
 * anywhere not +1) at each packed document; attention never crosses documents.
 */
export interface Batch {
  B: number;
  T: number;
  inputIds: Int32Array;
  positionIds: Int32Array;
  weights: Float32Array;
  /** Target ids [B*T] when they differ from inputIds (HF `labels`); default inputIds. */
  labels?: Int32Array;
}

/** Past keys/values per layer for incremental decoding of one sequence: k/v [1, Hkv, length, D]. */
export interface KVCache {
  length: number;
  k: Array<tf.Tensor4D | null>;
  v: Array<tf.Tensor4D | null>;
}

export interface LossOpts {
  /** Training mode: LoRA dropout (cfg.dropout > 0) is applied with masks derived from this seed. */
  dropoutSeed?: number;
  /**
   * lossSum only: a backward pass will follow (default true), so the lm_head gradient is computed during the
   * forward pass (saves one [M, V] matmul). Pass false for evaluation-only losses.
   */
  forBackward?: boolean;
  /**
   * lorasft's fused ops (src/ops: attention, RMSNorm, RoPE, SwiGLU, LoRA linear, cross-entropy); default: when the
   * active backend has their kernels (fusedOpsAvailable). false: the tfjs-op compositions that the 'tensorflow'
   * backend runs (src/model/layer_ops.ts, attention.ts, loss.ts), on any backend.
   */
  fused?: boolean;
  /**
   * Activation checkpointing per decoder layer: keep only each layer's input and recompute the layer in the
   * backward pass (~30% more compute, activation memory / ~20). 'auto' (default) turns it on when the taped
   * activations would exceed a quarter of the memory this process may use (activationBudget).
   */
  checkpoint?: boolean | 'auto';
}

/** Rough bytes of taped activations per token per layer (inputs saved by linears, attention, norms, SwiGLU). */
function activationBytesPerToken(cfg: ModelConfig): number {
  const qd = cfg.numHeads * cfg.headDim;
  const kvd = cfg.numKvHeads * cfg.headDim;
  return 4 * (4 * cfg.hiddenSize + 4 * qd + 3 * kvd + 3 * cfg.intermediateSize);
}

/**
 * The bytes 'auto' lets one micro-batch's taped activations take: a quarter of the machine's memory, or of the
 * process's cgroup limit when lower. The backward frees activations as it goes (src/gradients/backprop.ts), so
 * the step peaks near weights + activations.
 */
function activationBudget(): number {
  const limit = process.constrainedMemory?.() || Infinity; // 0 or undefined: no limit
  return Math.min(os.totalmem(), limit) / 4;
}

function wantCheckpoint(cfg: ModelConfig, tokens: number, opt: LossOpts['checkpoint']): boolean {
  if (opt === true || opt === false) return opt;
  return activationBytesPerToken(cfg) * cfg.numLayers * tokens > activationBudget();
}

const FUSED_KERNELS = [FusedAttention, GeluTanhMul, LoraLinear, RmsNorm, Rope, Swiglu, WeightedCrossEntropy];

/** True when every fused op has a kernel on the active backend: 'cpu' and 'native' (registerAllKernels), not 'tensorflow'. */
export function fusedOpsAvailable(): boolean {
  const b = tf.getBackend();
  return FUSED_KERNELS.every((k) => tf.getKernel(k, b) !== undefined);
}

/** HF tensor names and shapes the config implies ('lm_head.weight' only when untied). */
export function expectedWeights(cfg: ModelConfig): Map<string, number[]> {
  const C = cfg.hiddenSize;
  const w = new Map<string, number[]>([
    ['model.embed_tokens.weight', [cfg.vocabSize, C]],
    ['model.norm.weight', [C]],
  ]);
  if (!cfg.tieWordEmbeddings) w.set('lm_head.weight', [cfg.vocabSize, C]);
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    w.set(`${p}.input_layernorm.weight`, [C]);
    w.set(`${p}.post_attention_layernorm.weight`, [C]);
    if (cfg.sandwichNorm) {
      w.set(`${p}.pre_feedforward_layernorm.weight`, [C]);
      w.set(`${p}.post_feedforward_layernorm.weight`, [C]);
    }
    for (const t of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) {
      const [out, inp] = linearShape(cfg, t);
      w.set(`${p}.self_attn.${t}.weight`, [out, inp]);
      if (t === 'o_proj' ? cfg.oBias : cfg.qkvBias) w.set(`${p}.self_attn.${t}.bias`, [out]);
    }
    if (cfg.qkNorm) {
      w.set(`${p}.self_attn.q_norm.weight`, [cfg.headDim]);
      w.set(`${p}.self_attn.k_norm.weight`, [cfg.headDim]);
    }
    for (const t of ['gate_proj', 'up_proj', 'down_proj']) {
      const [out, inp] = linearShape(cfg, t);
      w.set(`${p}.mlp.${t}.weight`, [out, inp]);
      if (cfg.mlpBias) w.set(`${p}.mlp.${t}.bias`, [out]);
    }
  }
  return w;
}

/**
 * Load a local HF model dir (config.json + model.safetensors or sharded index), tensor by tensor. fp32: every
 * weight converted to float32. bf16: 2-D weights kept 16-bit (BF16 as read; F32/F16 narrowed one tensor at a
 * time), norms and biases float32; no float32 copy of the model exists at any point.
 */
export async function loadBaseModel(dir: string, opts: { precision?: Precision } = {}): Promise<BaseModel> {
  const precision = opts.precision ?? 'fp32';
  const config = loadModelConfig(dir);
  const available = listModelTensors(dir);
  const want = expectedWeights(config);
  const byFile = new Map<string, string[]>();
  for (const [name, shape] of want) {
    const a = available.get(name);
    if (!a)
      throw new UserError(
        `${dir}: weight '${name}' is missing (model_type ${config.modelType}, tie_word_embeddings ${config.tieWordEmbeddings})`,
      );
    if (a.info.shape.join() !== shape.join())
      throw new UserError(`${a.file}: weight '${name}' has shape [${a.info.shape}], config.json implies [${shape}]`);
    byFile.set(a.file, [...(byFile.get(a.file) ?? []), name]);
  }
  const weights = new Map<string, tf.Tensor>();
  for (const [file, names] of byFile) {
    const keep16 = precision === 'bf16' ? (n: string, shape: number[]) => keeps16(n, shape) : undefined;
    for (const [name, t] of readSafetensors(file, { names, keep16 })) {
      weights.set(name, t.bf16 ? ops.bf16Tensor(t.bf16, t.shape) : tf.tensor(t.data, t.shape, 'float32'));
    }
  }
  if (config.tieWordEmbeddings) weights.set('lm_head.weight', weights.get('model.embed_tokens.weight')!);
  const invFreqLocal =
    config.ropeLocalTheta === null
      ? undefined
      : ropeInvFreq({ ...config, ropeTheta: config.ropeLocalTheta, ropeScaling: { type: 'default' } });
  return {
    config,
    dir,
    weights,
    invFreq: ropeInvFreq(config),
    invFreqLocal,
    norms: plusOneNorms(config, weights),
    precision,
  };
}

export function disposeBaseModel(base: BaseModel): void {
  for (const t of new Set([...base.weights.values(), ...(base.norms?.values() ?? [])])) t.dispose();
  base.weights.clear();
  base.norms?.clear();
}

/** Every id (or, with `used`, every id where used[i] != 0) is in the vocabulary; errors name the flat index. */
function checkIds(cfg: ModelConfig, ids: Int32Array, what: string, used?: Float32Array): void {
  for (let i = 0; i < ids.length; i++) {
    if (used && used[i] === 0) continue;
    if (ids[i] < 0 || ids[i] >= cfg.vocabSize)
      throw new UserError(`${what}: token id ${ids[i]} at index ${i} is outside the vocabulary [0, ${cfg.vocabSize})`);
  }
}

/** Rows of the hidden state that predict a weighted token: row b*T+t-1 predicts inputIds[b*T+t]. */
function lossRows(batch: Batch): { rows: Int32Array; labels: Int32Array; w: Float32Array; weightSum: number } {
  const { B, T, weights } = batch;
  const targets = batch.labels ?? batch.inputIds;
  const rows: number[] = [];
  for (let b = 0; b < B; b++) for (let t = 1; t < T; t++) if (weights[b * T + t] !== 0) rows.push(b * T + t);
  const w = new Float32Array(rows.map((i) => weights[i]));
  return {
    rows: new Int32Array(rows.map((i) => i - 1)),
    labels: new Int32Array(rows.map((i) => targets[i])),
    w,
    weightSum: w.reduce((a, b) => a + b, 0),
  };
}

function checkBatch(cfg: ModelConfig, batch: Batch): void {
  const n = batch.B * batch.T;
  for (const k of ['inputIds', 'positionIds', 'weights'] as const) {
    if (batch[k].length !== n) throw new UserError(`batch: ${k} has ${batch[k].length} values, expected B*T = ${n}`);
  }
  checkIds(cfg, batch.inputIds, 'batch');
  if (batch.labels) {
    if (batch.labels.length !== n)
      throw new UserError(`batch: labels has ${batch.labels.length} values, expected B*T = ${n}`);
    checkIds(cfg, batch.labels, 'batch labels', batch.weights);
  }
}

/** sum_t w_t * CE(logits_{t-1}, inputIds_t) as a scalar differentiable wrt the LoRA variables, and sum_t w_t. */
export function lossSum(
  base: BaseModel,
  lora: LoraWeights | null,
  batch: Batch,
  opts: LossOpts = {},
): { loss: tf.Scalar; weightSum: number } {
  checkBatch(base.config, batch);
  const { rows, labels, w, weightSum } = lossRows(batch);
  const ctx: Ctx = {
    base,
    lora,
    dropoutSeed: opts.dropoutSeed,
    fused: opts.fused ?? fusedOpsAvailable(),
    checkpoint: wantCheckpoint(base.config, batch.B * batch.T, opts.checkpoint ?? 'auto'),
  };
  const loss = tf.tidy(() => {
    const hidden = decoder(ctx, batch.inputIds, batch.positionIds, batch.B, batch.T);
    if (rows.length === 0) return tf.add(tf.mul(tf.sum(hidden), 0), 0) as tf.Scalar; // nothing trained: +0, still connected
    // Only rows that predict a trained token go through the final norm and the lm_head.
    const h = rmsNorm(ctx, tf.gather(hidden, tf.tensor1d(rows, 'int32')), 'model.norm.weight') as tf.Tensor2D;
    const W = weight(base, 'lm_head.weight') as tf.Tensor2D;
    const forBackward = opts.forBackward ?? true;
    const softcap = base.config.finalLogitSoftcap;
    // The fused kernel (withGrad false for an evaluation: no dLoss/dh matmul). The plain tfjs composition runs
    // only where the fused kernel does not: logit soft-capping (Gemma 3) and backends without lorasft's kernels.
    if (ctx.fused && !softcap) return ops.crossEntropyWeighted(h, W, labels, w, { withGrad: forBackward });
    return chunkedWeightedCE(h, W, labels, w, { eagerGrad: forBackward, softcap });
  });
  return { loss, weightSum };
}

/** Loss sum and its gradients wrt every LoRA tensor (keyed by PEFT name), of the UNNORMALISED sum. */
export function lossAndGrads(
  base: BaseModel,
  lora: LoraWeights,
  batch: Batch,
  opts: LossOpts = {},
): { lossSum: number; weightSum: number; grads: Map<string, tf.Tensor> } {
  let weightSum = 0;
  const vars = [...lora.values()];
  const { value, grads } = tf.variableGrads(() => {
    const r = lossSum(base, lora, batch, opts);
    weightSum = r.weightSum;
    return r.loss;
  }, vars);
  const out = new Map<string, tf.Tensor>();
  for (const [name, v] of lora) out.set(name, grads[v.name]);
  const lossValue = value.dataSync()[0];
  value.dispose();
  return { lossSum: lossValue, weightSum, grads: out };
}

export function createKVCache(base: BaseModel): KVCache {
  const L = base.config.numLayers;
  return { length: 0, k: new Array(L).fill(null), v: new Array(L).fill(null) };
}

export function disposeKVCache(cache: KVCache): void {
  for (const t of [...cache.k, ...cache.v]) t?.dispose();
  cache.k.fill(null);
  cache.v.fill(null);
  cache.length = 0;
}

/**
 * Logits [T, V] of one sequence (or [1, V] for the last position with lastOnly). positionIds default to
 * cache.length + 0..T-1. With a cache the tokens continue the cached sequence and the cache is extended.
 */
export function forwardLogits(
  base: BaseModel,
  lora: LoraWeights | null,
  inputIds: Int32Array,
  positionIds?: Int32Array,
  cache?: KVCache,
  opts: { lastOnly?: boolean; fused?: boolean } = {},
): tf.Tensor2D {
  const T = inputIds.length;
  if (T === 0) throw new UserError('forwardLogits: no input tokens');
  checkIds(base.config, inputIds, 'input');
  const P = cache?.length ?? 0;
  const pos = positionIds ?? Int32Array.from({ length: T }, (_, i) => P + i);
  return tf.tidy(() => {
    const ctx: Ctx = { base, lora, fused: opts.fused ?? fusedOpsAvailable() };
    let hidden: tf.Tensor2D = decoder(ctx, inputIds, pos, 1, T, cache);
    if (opts.lastOnly) hidden = tf.slice(hidden, [T - 1, 0], [1, -1]);
    const h = rmsNorm(ctx, hidden, 'model.norm.weight');
    return softcapLogits(
      matMulWT(h as tf.Tensor2D, weight(base, 'lm_head.weight') as tf.Tensor2D),
      base.config.finalLogitSoftcap,
    );
  });
}
