// WeightedCrossEntropy: sum_m w_m CE(h_m W^T, label_m) and its gradient wrt h in one pass, chunked over rows so
// only [chunkRows, V] logits exist at a time (the [M, V] logits are never materialised).
// Reference: loops in float64; native: kernels/WeightedCrossEntropy.cc (sgemm per chunk). A packed bf16 W makes both
// lm_head matmuls bf16 (h and dlogits rounded to bf16, fp32 sums; native: kernels/MatMulBf16.cc, which rounds the
// softmax's e^(l - m) on oneDNN and subtracts the label's row of W in fp32).
import type { NativeAddon } from '../backend/addon.ts';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import {
  WeightedCrossEntropy,
  type WeightedCrossEntropyAttrs,
  type WeightedCrossEntropyInputs,
} from '../kernel_names.ts';
import { isPackedBf16, packedValues, roundBf16, weightF32 } from './MatMulBf16.ts';
import { alloc, f32, i32, type KernelArgs, kernelConfigs } from './util.ts';

function weightedCrossEntropyRef(args: KernelArgs<WeightedCrossEntropyInputs, WeightedCrossEntropyAttrs>) {
  const { h: ht, W: Wt } = args.inputs;
  const [M, C] = ht.shape,
    V = Wt.shape[0];
  const bf16 = isPackedBf16(Wt),
    h = bf16 ? roundBf16(f32(args.backend, ht)) : f32(args.backend, ht);
  const W = weightF32(args.backend, Wt);
  const labels = i32(args.backend, args.inputs.labels),
    w = f32(args.backend, args.inputs.weights);
  const withGrad = args.attrs.withGrad ?? true;
  const dh = new Float32Array(withGrad ? M * C : 0),
    logits = new Float64Array(V);
  let loss = 0;
  for (let m = 0; m < M; m++) {
    if (w[m] === 0) continue;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += h[m * C + c] * W[j * C + c];
      logits[j] = s;
      if (s > mx) mx = s;
    }
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[j] - mx);
    const lse = mx + Math.log(sum);
    loss += w[m] * (lse - logits[labels[m]]);
    for (let j = 0; withGrad && j < V; j++) {
      let g = w[m] * (Math.exp(logits[j] - lse) - (j === labels[m] ? 1 : 0));
      if (bf16) g = roundBf16(Float32Array.of(g))[0];
      for (let c = 0; c < C; c++) dh[m * C + c] += g * W[j * C + c];
    }
  }
  return [
    { shape: [], values: Float32Array.of(loss) },
    { shape: [withGrad ? M : 0, C], values: dh },
  ];
}

function weightedCrossEntropyNative(
  args: KernelArgs<WeightedCrossEntropyInputs, WeightedCrossEntropyAttrs>,
  addon: NativeAddon,
) {
  const { h: ht, W: Wt } = args.inputs;
  const [M, C] = ht.shape,
    V = Wt.shape[0];
  const withGrad = args.attrs.withGrad ?? true;
  const loss = new Float32Array(1),
    dh = withGrad ? alloc(args.backend, M * C, false) : null; // row chunks cover M, sgemm beta 0
  const [h, labels, w] = [
    f32(args.backend, ht),
    i32(args.backend, args.inputs.labels),
    f32(args.backend, args.inputs.weights),
  ];
  const rows = Math.max(1, Math.min(M, args.attrs.chunkRows));
  // bf16: on oneDNN the addon takes up to 2048 rows at once, one [rows, 8192] vocabulary tile at a time (an online
  // softmax: the lm_head streams from memory once per call); `even` sizes the fallback path's [rows, V] chunks: up to
  // twice as large, of equal size. fp32 keeps its chunks (and its loss bits).
  const rowsBf16 = Math.min(M, 2 * rows);
  const even = Math.ceil(M / Math.ceil(M / rowsBf16));
  if (isPackedBf16(Wt))
    addon.weightedCrossEntropyBf16(h, packedValues(args.backend, Wt), labels, w, loss, dh, M, C, V, even);
  else addon.weightedCrossEntropy(h, f32(args.backend, Wt), labels, w, loss, dh, M, C, V, rows);
  return [
    { shape: [], values: loss },
    { shape: [withGrad ? M : 0, C], values: dh ?? new Float32Array(0) },
  ];
}

export const weightedCrossEntropyConfigs: KernelConfig[] = kernelConfigs(
  WeightedCrossEntropy,
  weightedCrossEntropyRef,
  weightedCrossEntropyNative,
);
