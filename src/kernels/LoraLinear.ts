// LoraLinear / LoraLinearGrad: y = x W^T + bias + s (xl A^T) B^T (PEFT LoRA Linear; xl = x or dropout(x)).
// Reference: float64 loops; native: kernels/LoraLinear.cc (five sgemm calls for backward, no [N, out] temporaries).
// Without dropout the op passes only xl (attr sharedX), so backward returns one dx = dy W + s (dy B) A.
// A packed bf16 W (src/ops/matmul_bf16.ts) makes the base path a bf16 matmul (x, dy rounded to bf16, fp32 sums;
// native: loraLinearBf16 in kernels/MatMulBf16.cc); the LoRA path stays fp32.
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../backend/addon.ts';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import {
  LoraLinear,
  LoraLinearGrad,
  type LoraLinearAttrs,
  type LoraLinearGradInputs,
  type LoraLinearInputs,
} from '../kernel_names.ts';
import { isPackedBf16, packedValues, roundBf16, weightF32, weightShape } from './MatMulBf16.ts';
import { alloc, f32, type KernelArgs, kernelConfigs } from './util.ts';

function dims(args: KernelArgs<{ xl: TensorInfo; W: TensorInfo; A: TensorInfo }, LoraLinearAttrs>) {
  const [out, inp] = weightShape(args.inputs.W);
  return {
    N: args.inputs.xl.shape[0],
    inp,
    out,
    r: args.inputs.A.shape[0],
    s: args.attrs.scale,
    shared: args.attrs.sharedX === true,
  };
}

/** C[M,N] = alpha * sum_k a(m,k) b(k,n), accessors over flat arrays (reference only). */
function mm(
  M: number,
  N: number,
  K: number,
  a: (m: number, k: number) => number,
  b: (k: number, n: number) => number,
  alpha = 1,
): Float32Array {
  const c = new Float32Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += a(m, k) * b(k, n);
      c[m * N + n] = alpha * acc;
    }
  return c;
}

export function loraLinearRef(args: KernelArgs<LoraLinearInputs, LoraLinearAttrs>) {
  const { N, inp, out, r, s } = dims(args);
  const [x0, xl, A, B] = (['x', 'xl', 'A', 'B'] as const).map((n) =>
    f32(args.backend, args.inputs[n] ?? args.inputs.xl),
  );
  const bf16 = isPackedBf16(args.inputs.W),
    W = weightF32(args.backend, args.inputs.W),
    x = bf16 ? roundBf16(x0) : x0;
  const bias = args.inputs.bias ? f32(args.backend, args.inputs.bias) : null;
  const u = mm(
    N,
    r,
    inp,
    (m, k) => xl[m * inp + k],
    (k, j) => A[j * inp + k],
  );
  const base = mm(
    N,
    out,
    inp,
    (m, k) => x[m * inp + k],
    (k, o) => W[o * inp + k],
  );
  const low = mm(
    N,
    out,
    r,
    (m, k) => u[m * r + k],
    (k, o) => B[o * r + k],
    s,
  );
  const y = base.map((v, i) => v + low[i] + (bias ? bias[i % out] : 0));
  return [
    { shape: [N, out], values: y },
    { shape: [N, r], values: u },
  ];
}

export function loraLinearGradRef(args: KernelArgs<LoraLinearGradInputs, LoraLinearAttrs>) {
  const { N, inp, out, r, s, shared } = dims(args);
  const [dy, xl, A, B, u] = (['dy', 'xl', 'A', 'B', 'u'] as const).map((n) => f32(args.backend, args.inputs[n]));
  const W = weightF32(args.backend, args.inputs.W),
    dyW = isPackedBf16(args.inputs.W) ? roundBf16(dy) : dy;
  const v = mm(
    N,
    r,
    out,
    (m, k) => dy[m * out + k],
    (k, j) => B[k * r + j],
  );
  const dx = mm(
    N,
    inp,
    out,
    (m, k) => dyW[m * out + k],
    (k, i) => W[k * inp + i],
  );
  const dxl = mm(
    N,
    inp,
    r,
    (m, k) => v[m * r + k],
    (k, i) => A[k * inp + i],
    s,
  );
  const dA = mm(
    r,
    inp,
    N,
    (j, n) => v[n * r + j],
    (n, i) => xl[n * inp + i],
    s,
  );
  const dB = mm(
    out,
    r,
    N,
    (o, n) => dy[n * out + o],
    (n, j) => u[n * r + j],
    s,
  );
  if (shared)
    return [
      { shape: [N, inp], values: dx.map((d, i) => d + dxl[i]) },
      { shape: [r, inp], values: dA },
      { shape: [out, r], values: dB },
    ];
  return [
    { shape: [N, inp], values: dx },
    { shape: [N, inp], values: dxl },
    { shape: [r, inp], values: dA },
    { shape: [out, r], values: dB },
  ];
}

export function loraLinearNative(args: KernelArgs<LoraLinearInputs, LoraLinearAttrs>, addon: NativeAddon) {
  const { N, inp, out, r, s } = dims(args);
  const [x, xl, A, B] = (['x', 'xl', 'A', 'B'] as const).map((n) =>
    f32(args.backend, args.inputs[n] ?? args.inputs.xl),
  );
  // Every output is first written by an sgemm with beta 0: pooled buffers need no zero fill.
  const y = alloc(args.backend, N * out, false),
    u = alloc(args.backend, N * r, false);
  const bias = args.inputs.bias ? f32(args.backend, args.inputs.bias) : null;
  if (isPackedBf16(args.inputs.W))
    addon.loraLinearBf16(x, xl, packedValues(args.backend, args.inputs.W), A, B, bias, y, u, N, inp, out, r, s);
  else addon.loraLinear(x, xl, f32(args.backend, args.inputs.W), A, B, bias, y, u, N, inp, out, r, s);
  return [
    { shape: [N, out], values: y },
    { shape: [N, r], values: u },
  ];
}

export function loraLinearGradNative(args: KernelArgs<LoraLinearGradInputs, LoraLinearAttrs>, addon: NativeAddon) {
  const { N, inp, out, r, s, shared } = dims(args);
  const [dy, xl, A, B, u] = (['dy', 'xl', 'A', 'B', 'u'] as const).map((n) => f32(args.backend, args.inputs[n]));
  // shared: dx gets the LoRA path too (one [N, in] output, no dxl buffer, no tape Add).
  const dx = alloc(args.backend, N * inp, false),
    dxl = shared ? null : alloc(args.backend, N * inp, false);
  const dA = alloc(args.backend, r * inp, false),
    dB = alloc(args.backend, out * r, false);
  if (isPackedBf16(args.inputs.W))
    addon.loraLinearGradBf16(
      dy,
      xl,
      packedValues(args.backend, args.inputs.W),
      A,
      B,
      u,
      dx,
      dxl,
      dA,
      dB,
      N,
      inp,
      out,
      r,
      s,
    );
  else addon.loraLinearGrad(dy, xl, f32(args.backend, args.inputs.W), A, B, u, dx, dxl, dA, dB, N, inp, out, r, s);
  const gx = [{ shape: [N, inp], values: dx }, ...(dxl ? [{ shape: [N, inp], values: dxl }] : [])];
  return [...gx, { shape: [r, inp], values: dA }, { shape: [out, r], values: dB }];
}

export const loraLinearConfigs: KernelConfig[] = kernelConfigs(LoraLinear, loraLinearRef, loraLinearNative);
export const loraLinearGradConfigs: KernelConfig[] = kernelConfigs(
  LoraLinearGrad,
  loraLinearGradRef,
  loraLinearGradNative,
);
