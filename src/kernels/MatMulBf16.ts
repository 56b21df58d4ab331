// MatMulBf16: y = bf16(x) op(W) with a frozen bf16 weight W (packed two per int32; see src/ops/matmul_bf16.ts)
// and fp32 accumulation (torch.autocast's bf16 matmul). Reference: unpack + float64 loops; native:
// kernels/MatMulBf16.cc (oneDNN bf16 matmul, AMX/AVX512_BF16; fallback W -> fp32 in blocks + sgemm).
// Also the helpers LoraLinear and WeightedCrossEntropy use for bf16 weights.
import type { NativeAddon } from '../backend/addon.ts';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { MatMulBf16, type MatMulBf16Attrs, type MatMulBf16Inputs } from '../kernel_names.ts';
import { alloc, f32, type KernelArgs, kernelConfigs } from './util.ts';

/** True for a packed bf16 weight (int32 tensor holding two bf16 per element). */
export function isPackedBf16(t: TensorInfo): boolean {
  return t.dtype === 'int32';
}

/** Logical shape of a weight: a packed bf16 [R, C/2] is [R, C]. */
export function weightShape(t: TensorInfo): number[] {
  return isPackedBf16(t) ? [...t.shape.slice(0, -1), 2 * t.shape[t.shape.length - 1]] : t.shape;
}

/** The packed int32 values of a bf16 weight (the addon reads them as uint16). */
export function packedValues(backend: MathBackendCPU, t: TensorInfo): Int32Array {
  return backend.data.get(t.dataId).values as Int32Array;
}

/** A weight as float32: bf16 unpacked (exact), float32 as is. */
export function weightF32(backend: MathBackendCPU, t: TensorInfo): Float32Array {
  if (!isPackedBf16(t)) return f32(backend, t);
  const p = packedValues(backend, t);
  const out = new Uint32Array(2 * p.length);
  for (let i = 0; i < p.length; i++) {
    out[2 * i] = p[i] << 16; // little-endian: the low half is the first bf16
    out[2 * i + 1] = p[i] & 0xffff0000;
  }
  return new Float32Array(out.buffer);
}

const f = new Float32Array(1),
  u = new Uint32Array(f.buffer);
/** float32 -> bf16 -> float32, round to nearest even (what oneDNN's conversion does); NaN stays NaN. */
export function roundBf16(a: Float32Array): Float32Array {
  return a.map((v) => {
    f[0] = v;
    const b = u[0];
    u[0] = (b & 0x7fffffff) > 0x7f800000 ? (b | 0x400000) & 0xffff0000 : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16;
    return f[0];
  });
}

function dims(args: KernelArgs<MatMulBf16Inputs, MatMulBf16Attrs>) {
  const [M, K] = args.inputs.x.shape;
  const t = args.attrs.transposeW === true;
  const ws = weightShape(args.inputs.W);
  return { M, K, N: t ? ws[0] : ws[1], t };
}

function matMulBf16Ref(args: KernelArgs<MatMulBf16Inputs, MatMulBf16Attrs>) {
  const { M, K, N, t } = dims(args);
  const x = roundBf16(f32(args.backend, args.inputs.x)),
    W = weightF32(args.backend, args.inputs.W);
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += x[m * K + k] * (t ? W[n * K + k] : W[k * N + n]);
      y[m * N + n] = acc;
    }
  return [{ shape: [M, N], values: y }];
}

function matMulBf16Native(args: KernelArgs<MatMulBf16Inputs, MatMulBf16Attrs>, addon: NativeAddon) {
  const { M, K, N, t } = dims(args);
  const y = alloc(args.backend, M * N, false); // written whole (beta 0)
  addon.matMulBf16(f32(args.backend, args.inputs.x), packedValues(args.backend, args.inputs.W), y, M, N, K, t);
  return [{ shape: [M, N], values: y }];
}

export const matMulBf16Configs: KernelConfig[] = kernelConfigs(MatMulBf16, matMulBf16Ref, matMulBf16Native);
