// One decoding step for B sequences at once (continuous batching): each row feeds one token at its own position
// through its own KV cache and its own LoRA adapter (or none). The linears run as one [B, C] matmul per weight,
// so the base weights are read once per step for the whole batch; attention stays per sequence (caches differ
// in length). Same op order as model.ts's forwardLogits, so a batch of one gives the same logits bit for bit.
import * as tf from '@tensorflow/tfjs-core';
import { attention } from '../model/attention.ts';
import { fusedOpsAvailable, type BaseModel, type KVCache } from '../model/model.ts';
import { loraAName, loraBName, type LoraWeights } from '../model/lora.ts';
import { embedRows, matMulWT } from '../model/precision.ts';
import { ropeTables } from '../model/rope.ts';
import * as ops from '../ops/index.ts';

/** The families whose decoder batchStep mirrors; others decode one sequence at a time through forwardLogits. */
export const BATCHED_FAMILIES = new Set(['qwen3', 'qwen2', 'llama']);

export interface DecodeRow {
  /** The token to feed, at position cache.length. */
  token: number;
  cache: KVCache;
  lora: LoraWeights | null;
}

/** True when decodeStep can run this model on the active backend (fused ops registered, a known family). */
export function canBatch(base: BaseModel): boolean {
  return BATCHED_FAMILIES.has(base.config.modelType) && fusedOpsAvailable();
}

/** Runs of rows sharing one adapter: [start, count, lora]. Rows are expected grouped (the engine sorts them). */
function groups(rows: DecodeRow[]): Array<[number, number, LoraWeights | null]> {
  const out: Array<[number, number, LoraWeights | null]> = [];
  rows.forEach((r, i) => {
    const last = out[out.length - 1];
    if (last && last[2] === r.lora) last[1]++;
    else out.push([i, 1, r.lora]);
  });
  return out;
}

function weight(base: BaseModel, name: string): tf.Tensor {
  const w = base.weights.get(name);
  if (!w) throw new Error(`model weight '${name}' not loaded`);
  return w;
}

/**
 * y = x W^T (+ b) + per-row LoRA delta; x [B, in] -> [B, out]. One adapter for all rows: the fused LoraLinear
 * kernel, as model.ts. Mixed adapters: the base matmul once, then s * (x_g A^T) B^T for each group g of rows.
 */
function linear(
  base: BaseModel,
  gs: Array<[number, number, LoraWeights | null]>,
  x: tf.Tensor2D,
  module: string,
): tf.Tensor2D {
  const W = weight(base, `${module}.weight`) as tf.Tensor2D;
  const bias = base.weights.get(`${module}.bias`) as tf.Tensor1D | undefined;
  const ab = (l: LoraWeights | null) =>
    [l?.get(loraAName(module)), l?.get(loraBName(module))] as [tf.Tensor2D?, tf.Tensor2D?];
  if (gs.length === 1) {
    const [A, Bm] = ab(gs[0][2]);
    if (A && Bm) return ops.loraLinear(x, W, A, Bm, gs[0][2]!.scale, { bias });
  }
  let y: tf.Tensor2D = matMulWT(x, W); // W float32 or packed bf16
  if (bias) y = tf.add(y, bias) as tf.Tensor2D;
  if (gs.length === 1) return y;
  const out = W.shape[0];
  const deltas = gs.map(([start, n, l]) => {
    const [A, Bm] = ab(l);
    if (!A || !Bm) return tf.zeros([n, out]);
    const xg = tf.slice(x, [start, 0], [n, -1]);
    return tf.matMul(tf.mul(tf.matMul(xg, A, false, true), l!.scale), Bm, false, true); // [n, r] -> [n, out]
  });
  return tf.add(y, tf.concat(deltas, 0)) as tf.Tensor2D;
}

/**
 * Attention of row b's one query over its cached keys plus its new key; appends the new key/value to the cache.
 * q [B, H, D], k/v [B, Hkv, D] -> [B, H*D].
 */
function attendRows(rows: DecodeRow[], l: number, q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D): tf.Tensor2D {
  const [, H, D] = q.shape;
  const Hkv = k.shape[1];
  const outs = rows.map((row, b) => {
    const one = (t: tf.Tensor3D, h: number) =>
      tf.reshape(tf.slice(t, [b, 0, 0], [1, -1, -1]), [1, 1, h, D]) as tf.Tensor4D;
    let k4 = tf.transpose(one(k, Hkv), [0, 2, 1, 3]) as tf.Tensor4D; // [1, Hkv, 1, D]
    let v4 = tf.transpose(one(v, Hkv), [0, 2, 1, 3]) as tf.Tensor4D;
    const [pk, pv] = [row.cache.k[l], row.cache.v[l]];
    if (pk && pv) {
      k4 = tf.concat([pk, k4], 2);
      v4 = tf.concat([pv, v4], 2);
      pk.dispose();
      pv.dispose();
    }
    row.cache.k[l] = tf.keep(k4);
    row.cache.v[l] = tf.keep(v4);
    // The all-zero mask model.ts adds for one query over P+1 keys: kept so the sums are the same.
    return attention(one(q, H), k4, v4, tf.zeros([1, 1, 1, 1, k4.shape[2]]));
  });
  return (outs.length === 1 ? outs[0] : tf.concat(outs, 0)) as tf.Tensor2D;
}

/** Logits [B, V] for the next token of each row; every row's cache grows by one. Needs canBatch(base). */
export function decodeStep(base: BaseModel, rows: DecodeRow[]): tf.Tensor2D {
  const cfg = base.config;
  const { numHeads: H, numKvHeads: Hkv, headDim: D, rmsNormEps: eps } = cfg;
  // A bf16 model: norms' row sums in vector lanes and SwiGLU's vector exp, as the decoder (decoder.ts) runs it.
  const bf16 = base.precision === 'bf16';
  const norm = <T extends tf.Tensor>(x: T, name: string) =>
    ops.rmsNorm(x, weight(base, name), eps, { vectorSums: bf16 });
  const B = rows.length;
  const gs = groups(rows);
  const pos = Int32Array.from(rows, (r) => r.cache.length);
  const out = tf.tidy(() => {
    const { cos, sin } = ropeTables(base.invFreq, pos);
    let x = embedRows(
      weight(base, 'model.embed_tokens.weight') as tf.Tensor2D,
      Int32Array.from(rows, (r) => r.token),
    );
    for (let l = 0; l < cfg.numLayers; l++) {
      const xin = x;
      x = tf.tidy(() => {
        const p = `model.layers.${l}`;
        const h = norm(xin, `${p}.input_layernorm.weight`);
        let q = tf.reshape(linear(base, gs, h, `${p}.self_attn.q_proj`), [B, H, D]) as tf.Tensor3D;
        let k = tf.reshape(linear(base, gs, h, `${p}.self_attn.k_proj`), [B, Hkv, D]) as tf.Tensor3D;
        const v = tf.reshape(linear(base, gs, h, `${p}.self_attn.v_proj`), [B, Hkv, D]) as tf.Tensor3D;
        if (cfg.qkNorm) {
          q = norm(q, `${p}.self_attn.q_norm.weight`);
          k = norm(k, `${p}.self_attn.k_norm.weight`);
        }
        q = ops.rope(q, cos, sin);
        k = ops.rope(k, cos, sin);
        const y = tf.add(xin, linear(base, gs, attendRows(rows, l, q, k, v), `${p}.self_attn.o_proj`)) as tf.Tensor2D;
        const h2 = norm(y, `${p}.post_attention_layernorm.weight`);
        const act = ops.swiglu(linear(base, gs, h2, `${p}.mlp.gate_proj`), linear(base, gs, h2, `${p}.mlp.up_proj`), {
          fastExp: bf16,
        });
        return tf.add(y, linear(base, gs, act, `${p}.mlp.down_proj`)) as tf.Tensor2D;
      });
      if (l > 0) xin.dispose();
    }
    const h = norm(x, 'model.norm.weight');
    return matMulWT(h, weight(base, 'lm_head.weight') as tf.Tensor2D);
  }) as tf.Tensor2D;
  for (const r of rows) r.cache.length += 1;
  return out;
}
