// RmsNorm / RmsNormGrad over the last axis: y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps) (HF LlamaRMSNorm in
// float32). Backward: dx = rstd (dy w - xhat mean(dy w xhat)), dw = sum_rows dy xhat. Native: kernels/RmsNorm.cc.
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../backend/addon.ts';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import {
  RmsNorm,
  RmsNormGrad,
  type RmsNormAttrs,
  type RmsNormGradAttrs,
  type RmsNormGradInputs,
  type RmsNormInputs,
} from '../kernel_names.ts';
import { alloc, f32, type KernelArgs, kernelConfigs } from './util.ts';

function rows(args: KernelArgs<{ x: TensorInfo; weight: TensorInfo }, unknown>): [number, number] {
  const C = args.inputs.weight.shape[0];
  return [args.inputs.x.shape.reduce((a, b) => a * b, 1) / C, C];
}

function rmsNormRef(args: KernelArgs<RmsNormInputs, RmsNormAttrs>) {
  const [N, C] = rows(args);
  const { y, rstd } = rmsNormValues(
    f32(args.backend, args.inputs.x),
    f32(args.backend, args.inputs.weight),
    N,
    C,
    args.attrs.eps,
  );
  return [
    { shape: args.inputs.x.shape, values: y },
    { shape: [N], values: rstd },
  ];
}

/** The reference RMSNorm of N rows of C values (also FusedAttentionNormRope's reference). */
export function rmsNormValues(x: Float32Array, w: Float32Array, N: number, C: number, eps: number) {
  const y = new Float32Array(N * C),
    rstd = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c] * x[n * C + c];
    const r = (rstd[n] = 1 / Math.sqrt(ss / C + eps));
    for (let c = 0; c < C; c++) y[n * C + c] = x[n * C + c] * r * w[c];
  }
  return { y, rstd };
}

function rmsNormGradRef(args: KernelArgs<RmsNormGradInputs, RmsNormGradAttrs>) {
  const [N, C] = rows(args);
  const [dy, x, w, rstd] = (['dy', 'x', 'weight', 'rstd'] as const).map((n) => f32(args.backend, args.inputs[n]));
  const { dx, dw } = rmsNormGradValues(dy, x, w, rstd, N, C);
  return [
    { shape: args.inputs.x.shape, values: dx },
    { shape: [C], values: dw },
  ];
}

/** The reference RMSNorm backward of N rows of C values: dx [N*C], dw [C]. */
export function rmsNormGradValues(
  dy: Float32Array,
  x: Float32Array,
  w: Float32Array,
  rstd: Float32Array,
  N: number,
  C: number,
) {
  const dx = new Float32Array(N * C),
    dw = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const r = rstd[n];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dy[n * C + c] * w[c] * x[n * C + c];
    const k = (dot * r * r) / C;
    for (let c = 0; c < C; c++) {
      dx[n * C + c] = r * (dy[n * C + c] * w[c] - x[n * C + c] * k);
      dw[c] += dy[n * C + c] * x[n * C + c] * r;
    }
  }
  return { dx, dw: Float32Array.from(dw) };
}

function rmsNormNative(args: KernelArgs<RmsNormInputs, RmsNormAttrs>, addon: NativeAddon) {
  const [N, C] = rows(args);
  const y = alloc(args.backend, N * C, false),
    rstd = new Float32Array(N); // every row written
  const { eps, vectorSums } = args.attrs;
  addon.rmsNorm(
    f32(args.backend, args.inputs.x),
    f32(args.backend, args.inputs.weight),
    y,
    rstd,
    N,
    C,
    eps,
    !!vectorSums,
  );
  return [
    { shape: args.inputs.x.shape, values: y },
    { shape: [N], values: rstd },
  ];
}

function rmsNormGradNative(args: KernelArgs<RmsNormGradInputs, RmsNormGradAttrs>, addon: NativeAddon) {
  const [N, C] = rows(args);
  const dx = alloc(args.backend, N * C, false),
    dw = new Float32Array(C);
  const [dy, x, w, rstd] = (['dy', 'x', 'weight', 'rstd'] as const).map((n) => f32(args.backend, args.inputs[n]));
  addon.rmsNormGrad(dy, x, w, rstd, dx, dw, N, C, !!args.attrs.vectorSums);
  return [
    { shape: args.inputs.x.shape, values: dx },
    { shape: [C], values: dw },
  ];
}

export const rmsNormConfigs: KernelConfig[] = kernelConfigs(RmsNorm, rmsNormRef, rmsNormNative);
export const rmsNormGradConfigs: KernelConfig[] = kernelConfigs(RmsNormGrad, rmsNormGradRef, rmsNormGradNative);
