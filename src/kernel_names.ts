// Names, inputs and attributes of lorasft's fused kernels (tfjs kernel_names.ts style). One name joins the op
// (src/ops), the kernels (src/kernels: TS reference for 'cpu' + native for 'native', C++ in kernels/) and the
// gradient (src/gradients). Letters: B batch, T tokens, C hidden, H heads, Hkv kv heads, D head dim, V vocab.
import type { NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

/** Causal attention within segments with GQA. q [B,T,H,D], k/v [B,T,Hkv,D], segmentIds int32 [B,T]
 *  (non-decreasing per row) -> [out [B,T,H,D], lse [B,H,T]]. */
export const FusedAttention = 'FusedAttention';
export type FusedAttentionInputs = {
  q: TensorInfo;
  k: TensorInfo;
  v: TensorInfo;
  segmentIds: TensorInfo;
} & NamedTensorInfoMap;
/** window > 0: sliding window, query i sees keys i-window < j <= i (HF sliding_window); 0 or absent: none. */
export interface FusedAttentionAttrs {
  scale: number;
  window?: number;
  /** bf16 products (bf16 models): q, k, v, P, dO and dS rounded to bf16 before each product, fp32 accumulation. */
  bf16?: boolean;
  /** FusedAttentionNormRope (and its gradient): the eps of the q/k RMSNorm. */
  normEps?: number;
}

/** FusedAttention of rope(q), rope(k) (HF rotate-half, as Rope) with cos/sin [B*T, D]: one pass fewer over q and k. */
export const FusedAttentionRope = 'FusedAttentionRope';
export type FusedAttentionRopeInputs = FusedAttentionInputs & { cos: TensorInfo; sin: TensorInfo };

/** FusedAttentionRope of rmsNorm(q, qNorm), rmsNorm(k, kNorm) over each head's D values (Qwen3's q_norm, k_norm;
 *  attr normEps; row sums as RmsNorm's vectorSums when bf16): the norm passes over q, k, dq, dk are folded in. */
export const FusedAttentionNormRope = 'FusedAttentionNormRope';
export type FusedAttentionNormRopeInputs = FusedAttentionRopeInputs & { qNorm: TensorInfo; kNorm: TensorInfo };

/** dy, q, k, v, segmentIds[, cos, sin[, qNorm, kNorm]], out, lse -> [dq, dk, dv] (with cos/sin: of the unrotated
 *  q, k; with qNorm/kNorm: of the raw q, k before the norm). */
export const FusedAttentionGrad = 'FusedAttentionGrad';
export type FusedAttentionGradInputs = FusedAttentionInputs & {
  dy: TensorInfo;
  out: TensorInfo;
  lse: TensorInfo;
  cos?: TensorInfo;
  sin?: TensorInfo;
  qNorm?: TensorInfo;
  kNorm?: TensorInfo;
};

/** h [M,C], W [V,C], labels int32 [M], weights [M] -> [loss [] = sum w*CE, dh [M,C] = dloss/dh]; withGrad false
 *  (an evaluation): dh is [0,C] and the second lm_head matmul is skipped. */
export const WeightedCrossEntropy = 'WeightedCrossEntropy';
export type WeightedCrossEntropyInputs = {
  h: TensorInfo;
  W: TensorInfo;
  labels: TensorInfo;
  weights: TensorInfo;
} & NamedTensorInfoMap;
export interface WeightedCrossEntropyAttrs {
  chunkRows: number;
  withGrad?: boolean;
}

/** x [..., C], weight [C] -> [y [..., C], rstd [N]] (N = rows of x). */
export const RmsNorm = 'RmsNorm';
export type RmsNormInputs = { x: TensorInfo; weight: TensorInfo } & NamedTensorInfoMap;
export interface RmsNormAttrs {
  eps: number;
  /** bf16 models: row sums in AVX-512 lanes (a different summation order; fp32 models keep the scalar one). */
  vectorSums?: boolean;
}

/** dy, x, weight, rstd -> [dx, dweight]. */
export const RmsNormGrad = 'RmsNormGrad';
export type RmsNormGradInputs = {
  dy: TensorInfo;
  x: TensorInfo;
  weight: TensorInfo;
  rstd: TensorInfo;
} & NamedTensorInfoMap;
export type RmsNormGradAttrs = Pick<RmsNormAttrs, 'vectorSums'>;

/** gate, up (same shape) -> silu(gate) * up. */
export const Swiglu = 'Swiglu';
export type SwigluInputs = { gate: TensorInfo; up: TensorInfo } & NamedTensorInfoMap;

/** dy, gate, up -> [dgate, dup]. */
export interface SwigluAttrs {
  /** bf16 models: sigmoid through a vector exp (relative error ~2e-7, far below the bf16 rounding of its inputs). */
  fastExp?: boolean;
}
export const SwigluGrad = 'SwigluGrad';
export type SwigluGradInputs = { dy: TensorInfo; gate: TensorInfo; up: TensorInfo } & NamedTensorInfoMap;

/** gate, up (same shape) -> gelu_tanh(gate) * up (Gemma MLP). */
export const GeluTanhMul = 'GeluTanhMul';
export type GeluTanhMulInputs = SwigluInputs;

/** dy, gate, up -> [dgate, dup]. */
export const GeluTanhMulGrad = 'GeluTanhMulGrad';
export type GeluTanhMulGradInputs = SwigluGradInputs;

/** x [N,h,D], cos/sin [N,D] -> x cos + rotate_half(x) sin (transpose: the adjoint map, for the gradient). */
export const Rope = 'Rope';
export type RopeInputs = { x: TensorInfo; cos: TensorInfo; sin: TensorInfo } & NamedTensorInfoMap;
export interface RopeAttrs {
  transpose: boolean;
}

/** PEFT LoRA linear: x? [N,in], xl [N,in] (dropout(x); x absent when xl is x), W [out,in], A [r,in], B [out,r],
 *  bias? [out] -> [y = x W^T + bias + scale (xl A^T) B^T [N,out], u = xl A^T [N,r]]. */
export const LoraLinear = 'LoraLinear';
export type LoraLinearInputs = {
  x?: TensorInfo;
  xl: TensorInfo;
  W: TensorInfo;
  A: TensorInfo;
  B: TensorInfo;
  bias?: TensorInfo;
} & NamedTensorInfoMap;
export interface LoraLinearAttrs {
  scale: number;
  sharedX: boolean;
}

/** dy, xl, W, A, B, u -> [dx = dy W, dxl = scale (dy B) A, dA, dB]; with attr sharedX (x is xl) -> [dx + dxl, dA, dB]. */
export const LoraLinearGrad = 'LoraLinearGrad';
export type LoraLinearGradInputs = {
  dy: TensorInfo;
  xl: TensorInfo;
  W: TensorInfo;
  A: TensorInfo;
  B: TensorInfo;
  u: TensorInfo;
} & NamedTensorInfoMap;

/** LoraLinear for n linears that read one input (q/k/v, gate/up; no dropout). Inputs, in this order (an array, so
 *  that the gradient saves them all): x [N,in]; per member i W_i [out_i,in], A_i [r,in], B_i [out_i,r]; then the
 *  biases [out_i] of the members listed in attr `biased`. -> [U [N, n r] (the u_i = x A_i^T side by side), y_0 ..
 *  y_{n-1} (y_i [N,out_i] as LoraLinear's)]. */
export const LoraLinearGroup = 'LoraLinearGroup';
export type LoraLinearGroupInputs = TensorInfo[];
export interface LoraLinearGroupAttrs {
  scale: number;
  members: number;
  biased: number[];
}

/** x, U and per member dy_i, W_i, A_i, B_i (named dy0, W0, A0, B0, dy1, ...) -> [dx = sum_i (dy_i W_i + scale
 *  (dy_i B_i) A_i), dA_0, dB_0, dA_1, ...]. */
export const LoraLinearGroupGrad = 'LoraLinearGroupGrad';
export type LoraLinearGroupGradInputs = { x: TensorInfo; U: TensorInfo } & NamedTensorInfoMap;

/** Matmul with a frozen bf16 weight, fp32 accumulation: x [N,K] (rounded to bf16), W bf16 packed two per int32
 *  ([Nout,K/2] if transposeW: y = x W^T [N,Nout]; else [K,Nout/2]: y = x W) -> y float32. */
export const MatMulBf16 = 'MatMulBf16';
export type MatMulBf16Inputs = { x: TensorInfo; W: TensorInfo } & NamedTensorInfoMap;
export interface MatMulBf16Attrs {
  transposeW: boolean;
}
