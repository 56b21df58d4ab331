// FusedAttention / FusedAttentionGrad: causal attention inside packed segments with GQA (head h reads kv head
// h / (H/Hkv), as HF repeat_kv). Reference: plain loops, query i attends key j iff j <= i and seg[j] == seg[i]
// (and i - j < window when the window attribute is > 0: HF sliding_window_overlay);
// native: kernels/FusedAttention.cc (per-segment sgemm, [L, L] scratch only, P recomputed from lse in backward);
// with the bf16 attribute kernels/FusedAttentionBf16.cc (oneDNN bf16 products), and the reference rounds the
// operands of each product to bf16 at the same points (q, k, v, P, dO, dS). FusedAttentionRope (inputs cos, sin)
// runs the same kernels on rope(q), rope(k); its gradient returns dq, dk of the unrotated q, k. FusedAttentionNormRope
// (inputs qNorm, kNorm) on rope(rmsNorm(q)), rope(rmsNorm(k)): the reference composes the RmsNorm reference; the
// addon normalizes as its RmsNorm kernel does (vectorSums under the bf16 attribute), inside the bf16 kernel's pack and
// scatter, or around its fp32 path.
import type { NativeAddon } from '../backend/addon.ts';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import {
  FusedAttention,
  FusedAttentionGrad,
  FusedAttentionNormRope,
  FusedAttentionRope,
  type FusedAttentionAttrs,
  type FusedAttentionGradInputs,
  type FusedAttentionInputs,
  type FusedAttentionNormRopeInputs,
  type FusedAttentionRopeInputs,
} from '../kernel_names.ts';
import { alloc, f32, i32, type KernelArgs, kernelConfigs } from './util.ts';
import { roundBf16 } from './MatMulBf16.ts';
import { ropeValues } from './Rope.ts';
import { rmsNormGradValues, rmsNormValues } from './RmsNorm.ts';

/** The RoPE tables of a FusedAttentionRope call (or its gradient), else undefined. */
function ropeTables(args: KernelArgs<FusedAttentionInputs, FusedAttentionAttrs>) {
  const { cos, sin } = args.inputs as Partial<FusedAttentionRopeInputs>;
  return cos && sin ? { cos: f32(args.backend, cos), sin: f32(args.backend, sin) } : undefined;
}

/** The q/k norm weights of a FusedAttentionNormRope call (or its gradient), else undefined. */
function normWeights(args: KernelArgs<FusedAttentionInputs, FusedAttentionAttrs>) {
  const { qNorm, kNorm } = args.inputs as Partial<FusedAttentionNormRopeInputs>;
  return qNorm && kNorm
    ? { q: f32(args.backend, qNorm), k: f32(args.backend, kNorm), eps: args.attrs.normEps ?? 1e-6 }
    : undefined;
}

/** Rows [rows, D] of q or k, as the reference RmsNorm normalizes them (with the call's norm weights). */
function normedRef(args: KernelArgs<FusedAttentionInputs, FusedAttentionAttrs>, name: 'q' | 'k', x: Float32Array) {
  const D = args.inputs.q.shape[3],
    norm = normWeights(args)!;
  return rmsNormValues(x, norm[name], x.length / D, D, norm.eps);
}

/** q or k as the products see it: normalized (with norm weights), then rotated (with RoPE tables) (reference). */
function rotated(args: KernelArgs<FusedAttentionInputs, FusedAttentionAttrs>, name: 'q' | 'k'): Float32Array {
  let x = f32(args.backend, args.inputs[name]);
  const rope = ropeTables(args);
  if (normWeights(args)) x = normedRef(args, name, x).y;
  return rope ? ropeValues(x, rope.cos, rope.sin, tokenRows(args, x), false) : x;
}

/** [B*T, heads, D] of q, k or their gradients. */
function tokenRows(args: KernelArgs<FusedAttentionInputs, FusedAttentionAttrs>, x: Float32Array): number[] {
  const [B, T, , D] = args.inputs.q.shape;
  return [B * T, x.length / (B * T * D), D];
}

interface Dims {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
  scale: number;
  window: number;
  /** bf16 products: round an operand (identity in fp32). */
  r16: (x: number) => number;
}

const one = new Float32Array(1);
const roundOne = (x: number) => ((one[0] = x), roundBf16(one)[0]);

function dims(args: KernelArgs<FusedAttentionInputs, FusedAttentionAttrs>): Dims {
  const [B, T, H, D] = args.inputs.q.shape;
  const { scale, window = 0, bf16 = false } = args.attrs;
  return { B, T, H, Hkv: args.inputs.k.shape[2], D, scale, window, r16: bf16 ? roundOne : (x: number) => x };
}

/** Softmax probabilities of query (b, h, i) over keys 0..i (0 where masked); returns lse. p has length >= i+1. */
function probs(
  q: Float32Array,
  k: Float32Array,
  seg: Int32Array,
  d: Dims,
  b: number,
  h: number,
  i: number,
  p: Float64Array,
): number {
  const { T, H, Hkv, D, scale, window } = d;
  const kvh = Math.floor(h / (H / Hkv));
  const qo = ((b * T + i) * H + h) * D;
  let m = -Infinity;
  for (let j = 0; j <= i; j++) {
    if (seg[b * T + j] !== seg[b * T + i] || (window > 0 && i - j >= window)) {
      p[j] = -Infinity;
      continue;
    }
    const ko = ((b * T + j) * Hkv + kvh) * D;
    let s = 0;
    for (let e = 0; e < D; e++) s += q[qo + e] * k[ko + e];
    p[j] = s * scale;
    if (p[j] > m) m = p[j];
  }
  let sum = 0;
  for (let j = 0; j <= i; j++) sum += p[j] = Math.exp(p[j] - m);
  for (let j = 0; j <= i; j++) p[j] /= sum;
  return m + Math.log(sum);
}

/** An operand of the products: rounded to bf16 under the bf16 attribute. */
const operand = (args: { attrs: FusedAttentionAttrs }, a: Float32Array) => (args.attrs.bf16 ? roundBf16(a) : a);

function fusedAttentionRef(args: KernelArgs<FusedAttentionInputs, FusedAttentionAttrs>) {
  const d = dims(args);
  const { B, T, H, Hkv, D } = d;
  const [q, k, v] = [rotated(args, 'q'), rotated(args, 'k'), f32(args.backend, args.inputs.v)].map((a) =>
    operand(args, a),
  );
  const seg = i32(args.backend, args.inputs.segmentIds);
  const out = new Float32Array(B * T * H * D),
    lse = new Float32Array(B * H * T);
  const p = new Float64Array(T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < T; i++) {
        lse[(b * H + h) * T + i] = probs(q, k, seg, d, b, h, i, p);
        const kvh = Math.floor(h / (H / Hkv)),
          oo = ((b * T + i) * H + h) * D;
        for (let j = 0; j <= i; j++) {
          if (p[j] === 0) continue;
          const vo = ((b * T + j) * Hkv + kvh) * D;
          const pj = d.r16(p[j]);
          for (let e = 0; e < D; e++) out[oo + e] += pj * v[vo + e];
        }
      }
  return [
    { shape: [B, T, H, D], values: out },
    { shape: [B, H, T], values: lse },
  ];
}

function fusedAttentionGradRef(args: KernelArgs<FusedAttentionGradInputs, FusedAttentionAttrs>) {
  const d = dims(args);
  const { B, T, H, Hkv, D, scale } = d;
  const g = (n: keyof typeof args.inputs & string) => f32(args.backend, args.inputs[n]!);
  const [dy, o] = [g('dy'), g('out')];
  // dy itself for rowsum(dO * O), dyR in the products.
  const [q, k, v, dyR] = [rotated(args, 'q'), rotated(args, 'k'), g('v'), dy].map((a) => operand(args, a));
  const seg = i32(args.backend, args.inputs.segmentIds);
  const dq = new Float32Array(q.length),
    dk = new Float32Array(k.length),
    dv = new Float32Array(v.length);
  const p = new Float64Array(T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < T; i++) {
        probs(q, k, seg, d, b, h, i, p);
        const kvh = Math.floor(h / (H / Hkv)),
          qo = ((b * T + i) * H + h) * D;
        let di = 0; // rowsum(dO * O)
        for (let e = 0; e < D; e++) di += dy[qo + e] * o[qo + e];
        for (let j = 0; j <= i; j++) {
          if (p[j] === 0) continue;
          const ko = ((b * T + j) * Hkv + kvh) * D;
          const pj = d.r16(p[j]);
          let dp = 0;
          for (let e = 0; e < D; e++) {
            dp += dyR[qo + e] * v[ko + e];
            dv[ko + e] += pj * dyR[qo + e];
          }
          const ds = d.r16(p[j] * (dp - di) * scale);
          for (let e = 0; e < D; e++) {
            dq[qo + e] += ds * k[ko + e];
            dk[ko + e] += ds * q[qo + e];
          }
        }
      }
  const rope = ropeTables(args); // the gradients of the unrotated q, k (and before the norm, with one)
  const back = (x: Float32Array, name: 'q' | 'k') => {
    const y = rope ? ropeValues(x, rope.cos, rope.sin, tokenRows(args, x), true) : x;
    if (!normWeights(args)) return y;
    const raw = f32(args.backend, args.inputs[name]);
    return rmsNormGradValues(y, raw, normWeights(args)![name], normedRef(args, name, raw).rstd, raw.length / D, D).dx;
  };
  return [
    { shape: [B, T, H, D], values: back(dq, 'q') },
    { shape: args.inputs.k.shape, values: back(dk, 'k') },
    { shape: args.inputs.v.shape, values: dv },
  ];
}

/** The addon's trailing arguments: cos, sin for FusedAttentionRope (and its gradient), and for FusedAttentionNormRope
 *  also qNorm, kNorm, eps. */
function tailArgs(
  args: KernelArgs<FusedAttentionInputs, FusedAttentionAttrs>,
): [cos?: Float32Array, sin?: Float32Array, qNorm?: Float32Array, kNorm?: Float32Array, eps?: number] {
  const rope = ropeTables(args),
    norm = normWeights(args);
  if (!rope) return [];
  return norm ? [rope.cos, rope.sin, norm.q, norm.k, norm.eps] : [rope.cos, rope.sin];
}

function fusedAttentionNative(args: KernelArgs<FusedAttentionInputs, FusedAttentionAttrs>, addon: NativeAddon) {
  const { B, T, H, Hkv, D, scale, window } = dims(args);
  // Segments cover every row: each out row (sgemm beta 0) and lse entry is written, so pooled buffers need no fill.
  const out = alloc(args.backend, B * T * H * D, false),
    lse = alloc(args.backend, B * H * T, false);
  const x = (n: keyof typeof args.inputs & string) => f32(args.backend, args.inputs[n]!);
  addon.fusedAttention(
    x('q'),
    x('k'),
    x('v'),
    i32(args.backend, args.inputs.segmentIds),
    out,
    lse,
    B,
    T,
    H,
    Hkv,
    D,
    scale,
    window,
    args.attrs.bf16 ?? false,
    ...tailArgs(args),
  );
  return [
    { shape: [B, T, H, D], values: out },
    { shape: [B, H, T], values: lse },
  ];
}

function fusedAttentionGradNative(args: KernelArgs<FusedAttentionGradInputs, FusedAttentionAttrs>, addon: NativeAddon) {
  const { B, T, H, Hkv, D, scale, window } = dims(args);
  const x = (n: keyof typeof args.inputs & string) => f32(args.backend, args.inputs[n]!);
  // The addon writes dq, dk, dv whole (it zero-fills dk, dv itself where it adds into them): no fill here.
  const dq = alloc(args.backend, B * T * H * D, false),
    dk = alloc(args.backend, B * T * Hkv * D, false);
  const dv = alloc(args.backend, dk.length, false);
  addon.fusedAttentionGrad(
    x('dy'),
    x('q'),
    x('k'),
    x('v'),
    i32(args.backend, args.inputs.segmentIds),
    x('out'),
    x('lse'),
    dq,
    dk,
    dv,
    B,
    T,
    H,
    Hkv,
    D,
    scale,
    window,
    args.attrs.bf16 ?? false,
    ...tailArgs(args),
  );
  return [
    { shape: [B, T, H, D], values: dq },
    { shape: args.inputs.k.shape, values: dk },
    { shape: args.inputs.v.shape, values: dv },
  ];
}

export const fusedAttentionConfigs: KernelConfig[] = [
  ...kernelConfigs(FusedAttention, fusedAttentionRef, fusedAttentionNative),
  ...kernelConfigs(FusedAttentionRope, fusedAttentionRef, fusedAttentionNative),
  ...kernelConfigs(FusedAttentionNormRope, fusedAttentionRef, fusedAttentionNative),
];
export const fusedAttentionGradConfigs: KernelConfig[] = kernelConfigs(
  FusedAttentionGrad,
  fusedAttentionGradRef,
  fusedAttentionGradNative,
);
