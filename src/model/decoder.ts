// The decoder stack of every family: embedding -> layers (norm, attention with RoPE, MLP) -> hidden states, with
// the layer ops of src/model/layer_ops.ts (fused, or tfjs compositions), activation checkpointing and a KV cache.
import * as tf from '@tensorflow/tfjs-core';
import * as ops from '../ops/index.ts';
import { attention, attentionMask, segmentsFromPositions } from './attention.ts';
import { checkpointed } from './checkpoint.ts';
import { FUSED_OPS, PLAIN_OPS, type LayerOps } from './layer_ops.ts';
import { loraAName, loraBName, PEFT_PREFIX, type LoraWeights } from './lora.ts';
import type { BaseModel, KVCache } from './model.ts';
import { embedRows, matMulWT } from './precision.ts';
import { ropeTables } from './rope.ts';

export interface Ctx {
  base: BaseModel;
  lora: LoraWeights | null;
  dropoutSeed?: number;
  /** FUSED_OPS (src/ops) instead of PLAIN_OPS (tfjs compositions, for backends without lorasft's kernels). */
  fused: boolean;
  /** Recompute each layer in the backward pass instead of keeping its activations. */
  checkpoint?: boolean;
}

/** RMSNorm with the HF norm weight `name` (as applied: 1 + w for Gemma). */
export function rmsNorm(ctx: Ctx, x: tf.Tensor, name: string): tf.Tensor {
  const eps = ctx.base.config.rmsNormEps;
  return layerOps(ctx).rmsNorm(x, normWeight(ctx, name), eps, { vectorSums: ctx.base.precision === 'bf16' });
}

/** The norm weight `name` as applied (1 + w for Gemma). */
function normWeight(ctx: Ctx, name: string): tf.Tensor {
  return ctx.base.norms?.get(name) ?? weight(ctx.base, name);
}

function layerOps(ctx: Ctx): LayerOps {
  return ctx.fused ? FUSED_OPS : PLAIN_OPS;
}

export function weight(base: BaseModel, name: string): tf.Tensor {
  const w = base.weights.get(name);
  if (!w) throw new Error(`model weight '${name}' not loaded`);
  return w;
}

/** y = x W^T (+ b) + s * (dropout(x) A^T) B^T for a target linear; x [N, in] -> [N, out]. */
function linear(ctx: Ctx, x: tf.Tensor2D, module: string): tf.Tensor2D {
  const W = weight(ctx.base, `${module}.weight`) as tf.Tensor2D;
  const bias = ctx.base.weights.get(`${module}.bias`) as tf.Tensor1D | undefined;
  const A = ctx.lora?.get(loraAName(module)) as tf.Tensor2D | undefined;
  const Bm = ctx.lora?.get(loraBName(module)) as tf.Tensor2D | undefined;
  if (!A || !Bm || !ctx.lora) {
    const y = matMulWT(x, W);
    return (bias ? tf.add(y, bias) : y) as tf.Tensor2D;
  }
  const p = ctx.lora.cfg.dropout;
  const xa =
    p > 0 && ctx.dropoutSeed !== undefined
      ? (tf.dropout(x, p, undefined, `${ctx.dropoutSeed}:${module}`) as tf.Tensor2D)
      : x;
  return layerOps(ctx).loraLinear(x, W, A, Bm, ctx.lora.scale, { bias, xLora: xa });
}

/**
 * The linears `modules` of one input x, as linear() each gives them. A bf16 model on the fused ops with LoRA on all
 * of them and no dropout takes them in one loraLinearGroup call (x rounded to bf16 once, one summed gradient of x).
 */
function linears(ctx: Ctx, x: tf.Tensor2D, modules: string[]): tf.Tensor2D[] {
  const lora = ctx.lora;
  const grouped =
    ctx.fused &&
    ctx.base.precision === 'bf16' &&
    modules.length > 1 &&
    lora !== null &&
    (lora.cfg.dropout === 0 || ctx.dropoutSeed === undefined) &&
    modules.every((m) => lora.has(loraAName(m)) && lora.has(loraBName(m)));
  if (!grouped) return modules.map((m) => linear(ctx, x, m));
  const members = modules.map((m) => ({
    W: weight(ctx.base, `${m}.weight`) as tf.Tensor2D,
    A: lora.get(loraAName(m)) as tf.Tensor2D,
    B: lora.get(loraBName(m)) as tf.Tensor2D,
    bias: ctx.base.weights.get(`${m}.bias`) as tf.Tensor1D | undefined,
  }));
  return ops.loraLinearGroup(x, members, lora.scale);
}

/** Per-call constant tables a layer reads: RoPE cos/sin [N, D] and (plain attention) the additive mask. */
type Tables = { cos: tf.Tensor2D; sin: tf.Tensor2D; mask: tf.Tensor | null };

/**
 * Tables of each layer, one set per layer kind (Gemma 3: sliding-window layers with the local RoPE base, and global
 * ones; other families: one kind). `masked` = the plain-attention mask inputs; null on the fused path.
 */
function buildLayerTables(
  base: BaseModel,
  pos: Int32Array,
  masked: { seg: Int32Array; B: number; T: number; P: number } | null,
): Tables[] {
  const kinds = new Map<string, Tables>();
  return base.config.layerWindows.map((w) => {
    const inv = w > 0 && base.invFreqLocal ? base.invFreqLocal : base.invFreq;
    const key = `${w}/${inv === base.invFreq ? 'global' : 'local'}`;
    if (!kinds.has(key)) {
      const mask = masked ? attentionMask(masked.seg, masked.B, masked.T, masked.P, w) : null;
      kinds.set(key, { ...ropeTables(inv, pos), mask });
    }
    return kinds.get(key)!;
  });
}

/** The geometry of one decoder call: B sequences of T new tokens after P cached ones. */
interface Geom {
  B: number;
  T: number;
  P: number;
  /** Attention segment of each token [B*T] (from the positions). */
  seg: Int32Array;
  /** The fused attention kernel (no KV-cache input: a prefill uses it and fills the cache). */
  fusedAttn: boolean;
  /** A bf16 model: attention's score/value products in bf16 (as under torch.autocast), SwiGLU's vector exp. */
  bf16: boolean;
  cache?: KVCache;
}

/**
 * Decoder stack: ids/pos [B*T] -> hidden states [B*T, C] before the final norm. With a cache (B = 1) the new
 * keys/values are appended to it (kept tensors; the old ones are disposed).
 */
export function decoder(
  ctx: Ctx,
  ids: Int32Array,
  pos: Int32Array,
  B: number,
  T: number,
  cache?: KVCache,
): tf.Tensor2D {
  const cfg = ctx.base.config;
  const P = cache?.length ?? 0;
  const seg = segmentsFromPositions(pos, B, T);
  // The fused attention kernel takes no cached keys: decoding steps (P > 0, T small) use the tfjs-op attention.
  const g: Geom = { B, T, P, seg, fusedAttn: ctx.fused && P === 0, bf16: ctx.base.precision === 'bf16', cache };
  // Made up front: the per-layer tidy below would dispose tables made inside it.
  const layerTables = buildLayerTables(ctx.base, pos, g.fusedAttn ? null : { seg, B, T, P });
  let x = embedRows(weight(ctx.base, 'model.embed_tokens.weight') as tf.Tensor2D, ids); // [N, C]
  if (cfg.embedScale !== 1) x = tf.mul(x, cfg.embedScale); // Gemma: sqrt(C) in the model dtype
  for (let l = 0; l < cfg.numLayers; l++) {
    if (ctx.checkpoint && !cache && ctx.lora) {
      const vars = layerVars(ctx.lora, l);
      const t = layerTables[l];
      // The tables go through the checkpoint's saved tensors: lossSum's tidy disposes them before backprop.
      const consts = t.mask ? [t.cos, t.sin, t.mask] : [t.cos, t.sin];
      const block = (xx: tf.Tensor, c: tf.Tensor[]) =>
        decoderLayer(ctx, g, l, xx as tf.Tensor2D, {
          cos: c[0] as tf.Tensor2D,
          sin: c[1] as tf.Tensor2D,
          mask: c[2] ?? null,
        });
      x = (vars.length ? checkpointed(block, x, vars, consts) : decoderLayer(ctx, g, l, x, t)) as tf.Tensor2D;
    } else {
      // A tidy per layer frees what the tape does not keep (everything, when no gradient is recorded).
      const xin = x;
      x = tf.tidy(() => decoderLayer(ctx, g, l, xin, layerTables[l]));
      if (l > 0) xin.dispose();
    }
  }
  if (cache) cache.length += T;
  return x;
}

/** One decoder layer: x [N, C] -> x + attn(norm x) -> + mlp(norm) (Gemma: each branch also normed at its end). */
function decoderLayer(ctx: Ctx, g: Geom, l: number, x: tf.Tensor2D, t: Tables): tf.Tensor2D {
  const cfg = ctx.base.config;
  const p = `model.layers.${l}`;
  const sandwich = cfg.sandwichNorm;
  const h = rmsNorm(ctx, x, `${p}.input_layernorm.weight`) as tf.Tensor2D;
  const o = linear(ctx, selfAttention(ctx, g, l, h, t), `${p}.self_attn.o_proj`);
  x = tf.add(x, sandwich ? rmsNorm(ctx, o, `${p}.post_attention_layernorm.weight`) : o);
  const h2 = rmsNorm(ctx, x, `${p}.${sandwich ? 'pre_feedforward' : 'post_attention'}_layernorm.weight`) as tf.Tensor2D;
  const [gate, up] = linears(ctx, h2, [`${p}.mlp.gate_proj`, `${p}.mlp.up_proj`]);
  const lo = layerOps(ctx);
  const act = cfg.hiddenAct === 'gelu_tanh' ? lo.geluTanhMul(gate, up) : lo.swiglu(gate, up, { fastExp: g.bf16 });
  const m = linear(ctx, act, `${p}.mlp.down_proj`);
  return tf.add(x, sandwich ? rmsNorm(ctx, m, `${p}.post_feedforward_layernorm.weight`) : m);
}

/** Attention of layer l before o_proj: h [N, C] -> [N, H*D] (q/k norm, RoPE, fused or plain with the cache). */
function selfAttention(ctx: Ctx, g: Geom, l: number, h: tf.Tensor2D, t: Tables): tf.Tensor2D {
  const cfg = ctx.base.config;
  const { numHeads: H, numKvHeads: Hkv, headDim: D } = cfg;
  const { B, T, cache } = g;
  const N = B * T;
  const p = `model.layers.${l}.self_attn`;
  const [qf, kf, vf] = linears(ctx, h, [`${p}.q_proj`, `${p}.k_proj`, `${p}.v_proj`]);
  let q = tf.reshape(qf, [N, H, D]) as tf.Tensor3D;
  let k = tf.reshape(kf, [N, Hkv, D]) as tf.Tensor3D;
  const v = tf.reshape(vf, [N, Hkv, D]) as tf.Tensor3D;
  // bf16 training: the kernel rotates q and k as it packs them to bf16 (one pass over them fewer each way), and
  // applies the q/k norm there too (two more, and two in the backward).
  const inKernel = g.fusedAttn && g.bf16 && !cache;
  if (cfg.qkNorm && !inKernel) {
    // Qwen3, Gemma 3: RMSNorm over D on each head of q and k, before RoPE.
    q = rmsNorm(ctx, q, `${p}.q_norm.weight`) as tf.Tensor3D;
    k = rmsNorm(ctx, k, `${p}.k_norm.weight`) as tf.Tensor3D;
  }
  const as4 = (x: tf.Tensor3D, heads: number) => tf.reshape(x, [B, T, heads, D]) as tf.Tensor4D;
  const attnScale = cfg.attnScale ?? undefined;
  if (inKernel) {
    const norm = cfg.qkNorm
      ? {
          q: normWeight(ctx, `${p}.q_norm.weight`),
          k: normWeight(ctx, `${p}.k_norm.weight`),
          eps: cfg.rmsNormEps,
        }
      : undefined;
    const out = ops.attention(
      as4(q, H),
      as4(k, Hkv),
      as4(v, Hkv),
      g.seg,
      attnScale,
      cfg.layerWindows[l],
      true,
      t,
      norm,
    );
    return tf.reshape(out, [N, H * D]);
  }
  const { rope } = layerOps(ctx);
  q = rope(q, t.cos, t.sin);
  k = rope(k, t.cos, t.sin);
  const toHeads = (x: tf.Tensor3D) => tf.transpose(as4(x, Hkv), [0, 2, 1, 3]) as tf.Tensor4D; // [B, Hkv, T, D]
  if (g.fusedAttn) {
    if (cache) {
      cache.k[l] = tf.keep(toHeads(k));
      cache.v[l] = tf.keep(toHeads(v));
    }
    return tf.reshape(
      ops.attention(as4(q, H), as4(k, Hkv), as4(v, Hkv), g.seg, attnScale, cfg.layerWindows[l], g.bf16),
      [N, H * D],
    );
  }
  // tfjs-op attention (src/model/attention.ts): decoding steps over the KV cache, and backends without the kernel.
  let k4 = toHeads(k);
  let v4 = toHeads(v);
  if (cache) {
    const [pk, pv] = [cache.k[l], cache.v[l]];
    if (pk && pv) {
      k4 = tf.concat([pk, k4], 2);
      v4 = tf.concat([pv, v4], 2);
      pk.dispose();
      pv.dispose();
    }
    cache.k[l] = tf.keep(k4);
    cache.v[l] = tf.keep(v4);
  }
  return attention(as4(q, H), k4, v4, t.mask!, attnScale);
}

/** The LoRA variables of layer l, in map order. */
function layerVars(lora: LoraWeights, l: number): tf.Variable[] {
  const prefix = `${PEFT_PREFIX}model.layers.${l}.`;
  return [...lora].filter(([n]) => n.startsWith(prefix)).map(([, v]) => v);
}
