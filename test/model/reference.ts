// Plain float64 TypeScript reference of the decoder + LoRA + weighted CE, written straight from HF transformers
// (modeling_qwen3.py / modeling_qwen2.py / modeling_llama.py / modeling_mistral.py / modeling_gemma3.py, PEFT
// lora.Linear), loop by loop, for parity tests. Gemma 3: Gemma3RMSNorm x * (1 + w), embeddings * embed_scale,
// post-attention / pre- and post-feedforward norms, gelu_pytorch_tanh, scaling query_pre_attn_scalar^-0.5,
// sliding-window layers (kv > q - window) with rope_local_base_freq, final logit soft-capping.
import type { ModelConfig } from '../../src/model/config.ts';

export type F64 = { shape: number[]; data: Float64Array };

export interface RefModel {
  cfg: ModelConfig;
  /** HF weight names (lm_head.weight may be absent when tied). */
  w: Map<string, F64>;
  /** PEFT LoRA names -> A [r, in] / B [out, r]. */
  lora: Map<string, F64>;
  /** alpha / r (or alpha / sqrt r). */
  scale: number;
}

export function toF64(t: { shape: number[]; data: ArrayLike<number> }): F64 {
  return { shape: [...t.shape], data: Float64Array.from(t.data) };
}

/** y[o] = sum_i W[o, i] x[i] (+ b[o]); W [out, in]. */
function matvec(W: F64, x: Float64Array, b?: F64): Float64Array {
  const [out, inp] = W.shape;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b.data[o] : 0;
    for (let i = 0; i < inp; i++) s += W.data[o * inp + i] * x[i];
    y[o] = s;
  }
  return y;
}

function rms(x: Float64Array, w: Float64Array, eps: number, off = 0, n = x.length): Float64Array {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[off + i] ** 2;
  const r = 1 / Math.sqrt(ss / n + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = x[off + i] * r * w[i];
  return y;
}

/** HF default / linear / llama3 inv_freq, written independently of src/model/rope.ts. */
function refInvFreq(cfg: ModelConfig): Float64Array {
  const D = cfg.headDim;
  const out = new Float64Array(D / 2);
  for (let i = 0; i < D / 2; i++) {
    let f = 1 / cfg.ropeTheta ** ((2 * i) / D);
    const rs = cfg.ropeScaling;
    if (rs.type === 'linear') f /= rs.factor;
    if (rs.type === 'llama3') {
      const wl = (2 * Math.PI) / f;
      const lowWl = rs.originalMaxPositionEmbeddings / rs.lowFreqFactor;
      const highWl = rs.originalMaxPositionEmbeddings / rs.highFreqFactor;
      if (wl > lowWl) f = f / rs.factor;
      else if (wl >= highWl) {
        const sm = (rs.originalMaxPositionEmbeddings / wl - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
        f = (1 - sm) * (f / rs.factor) + sm * f;
      }
    }
    out[i] = f;
  }
  return out;
}

/** Rotate-half RoPE in place on one head vector v[off .. off+D). */
function rope(v: Float64Array, off: number, D: number, pos: number, inv: Float64Array): void {
  const half = D / 2;
  for (let i = 0; i < half; i++) {
    const a = pos * inv[i];
    const c = Math.cos(a);
    const s = Math.sin(a);
    const x1 = v[off + i];
    const x2 = v[off + i + half];
    v[off + i] = x1 * c - x2 * s;
    v[off + i + half] = x2 * c + x1 * s;
  }
}

/** gelu_pytorch_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** Final-norm hidden state per position of one row: [T][C]. */
function refHidden(m: RefModel, ids: number[], pos: number[]): Float64Array[] {
  const { cfg, w } = m;
  const C = cfg.hiddenSize,
    H = cfg.numHeads,
    Hkv = cfg.numKvHeads,
    D = cfg.headDim,
    G = H / Hkv,
    T = ids.length;
  const invGlobal = refInvFreq(cfg);
  const invLocal =
    cfg.ropeLocalTheta === null
      ? invGlobal
      : refInvFreq({ ...cfg, ropeTheta: cfg.ropeLocalTheta, ropeScaling: { type: 'default' } });
  const scaling = cfg.attnScale ?? 1 / Math.sqrt(D);
  // Gemma3RMSNorm: x * rsqrt(mean x^2 + eps) * (1 + w).
  const get = (n: string) => {
    const t = w.get(n)!;
    return cfg.normPlusOne && n.endsWith('norm.weight') ? { shape: t.shape, data: t.data.map((v) => 1 + v) } : t;
  };
  const seg: number[] = [0];
  for (let t = 1; t < T; t++) seg.push(seg[t - 1] + (pos[t] === pos[t - 1] + 1 ? 0 : 1));
  const emb = get('model.embed_tokens.weight');
  let x: Float64Array[] = ids.map((id) => emb.data.slice(id * C, (id + 1) * C).map((v) => v * cfg.embedScale));
  const lin = (h: Float64Array, mod: string) => {
    const y = matvec(get(`${mod}.weight`), h, w.get(`${mod}.bias`));
    const A = m.lora.get(`base_model.model.${mod}.lora_A.weight`);
    const B = m.lora.get(`base_model.model.${mod}.lora_B.weight`);
    if (A && B) {
      const bax = matvec(B, matvec(A, h));
      for (let o = 0; o < y.length; o++) y[o] += m.scale * bax[o];
    }
    return y;
  };
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    const window = cfg.layerWindows[l];
    const inv = window > 0 ? invLocal : invGlobal;
    const q: Float64Array[] = [],
      k: Float64Array[] = [],
      v: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const h = rms(x[t], get(`${p}.input_layernorm.weight`).data, cfg.rmsNormEps);
      const qt = lin(h, `${p}.self_attn.q_proj`),
        kt = lin(h, `${p}.self_attn.k_proj`);
      if (cfg.qkNorm) {
        for (let hd = 0; hd < H; hd++)
          qt.set(rms(qt, get(`${p}.self_attn.q_norm.weight`).data, cfg.rmsNormEps, hd * D, D), hd * D);
        for (let hd = 0; hd < Hkv; hd++)
          kt.set(rms(kt, get(`${p}.self_attn.k_norm.weight`).data, cfg.rmsNormEps, hd * D, D), hd * D);
      }
      for (let hd = 0; hd < H; hd++) rope(qt, hd * D, D, pos[t], inv);
      for (let hd = 0; hd < Hkv; hd++) rope(kt, hd * D, D, pos[t], inv);
      q.push(qt);
      k.push(kt);
      v.push(lin(h, `${p}.self_attn.v_proj`));
    }
    const nx: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const att = new Float64Array(H * D);
      for (let hd = 0; hd < H; hd++) {
        const kv = Math.floor(hd / G);
        const js: number[] = [];
        for (let j = 0; j <= t; j++) if (seg[j] === seg[t] && (window === 0 || j > t - window)) js.push(j);
        const sc = js.map((j) => {
          let s = 0;
          for (let d = 0; d < D; d++) s += q[t][hd * D + d] * k[j][kv * D + d];
          return s * scaling;
        });
        const mx = Math.max(...sc);
        const e = sc.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        js.forEach((j, n) => {
          for (let d = 0; d < D; d++) att[hd * D + d] += (e[n] / z) * v[j][kv * D + d];
        });
      }
      const eps = cfg.rmsNormEps;
      if (cfg.sandwichNorm) {
        // Gemma3DecoderLayer: x + post_attention_norm(attn(input_norm x)); + post_ff_norm(mlp(pre_ff_norm x)).
        const o = rms(lin(att, `${p}.self_attn.o_proj`), get(`${p}.post_attention_layernorm.weight`).data, eps);
        const x1 = x[t].map((xi, i) => xi + o[i]);
        const h2 = rms(x1, get(`${p}.pre_feedforward_layernorm.weight`).data, eps);
        const g = lin(h2, `${p}.mlp.gate_proj`),
          u = lin(h2, `${p}.mlp.up_proj`);
        const d = rms(
          lin(
            g.map((gi, i) => geluTanh(gi) * u[i]),
            `${p}.mlp.down_proj`,
          ),
          get(`${p}.post_feedforward_layernorm.weight`).data,
          eps,
        );
        nx.push(x1.map((xi, i) => xi + d[i]));
        continue;
      }
      const o = lin(att, `${p}.self_attn.o_proj`);
      const x1 = x[t].map((xi, i) => xi + o[i]);
      const h2 = rms(x1, get(`${p}.post_attention_layernorm.weight`).data, eps);
      const g = lin(h2, `${p}.mlp.gate_proj`),
        u = lin(h2, `${p}.mlp.up_proj`);
      const a = g.map((gi, i) => (gi / (1 + Math.exp(-gi))) * u[i]);
      const d = lin(a, `${p}.mlp.down_proj`);
      nx.push(x1.map((xi, i) => xi + d[i]));
    }
    x = nx;
  }
  return x.map((xt) => rms(xt, get('model.norm.weight').data, cfg.rmsNormEps));
}

/** Logits [V] for a final hidden state (soft-capped, cap * tanh(z / cap), when the config sets a cap). */
function refLogits(m: RefModel, h: Float64Array): Float64Array {
  const z = matvec(m.w.get('lm_head.weight') ?? m.w.get('model.embed_tokens.weight')!, h);
  const cap = m.cfg.finalLogitSoftcap;
  return cap ? z.map((v) => cap * Math.tanh(v / cap)) : z;
}

/** sum_t w_t * CE(logits_{t-1}, ids_t) over one row, and sum_t w_t (t >= 1, w_t != 0). */
export function refLossRow(
  m: RefModel,
  ids: number[],
  pos: number[],
  weights: number[],
): { loss: number; weightSum: number } {
  const hs = refHidden(m, ids, pos);
  let loss = 0,
    ws = 0;
  for (let t = 1; t < ids.length; t++) {
    if (weights[t] === 0) continue;
    const lg = refLogits(m, hs[t - 1]);
    const mx = Math.max(...lg);
    let z = 0;
    for (const v of lg) z += Math.exp(v - mx);
    loss += weights[t] * (mx + Math.log(z) - lg[ids[t]]);
    ws += weights[t];
  }
  return { loss, weightSum: ws };
}
