// GatherV2 for 'native': the row gather of the embedding lookup (x[ids]) and of the row selection before the loss.
// x float32 or int32 (a packed bf16 embedding: copied as bits) [R, ...inner], indices int32 [...I], axis 0,
// batchDims 0 -> [...I, ...inner]: one memcpy per row (kernels/GatherV2.cc). Any other case (dtype, axis,
// batchDims, empty) runs the tfjs cpu kernel. An index outside [0, R) throws the cpu kernel's own error.
// TS reference: gatherV2Ref (parity test: test/kernels/GatherV2.test.ts).
import { GatherV2, getKernel, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { alloc, f32, i32, type KernelArgs } from './util.ts';
import { nativeAddon } from '../backend/addon.ts';

function outOfRange(index: number, R: number): Error {
  return new Error(`GatherV2: the index value ${index} is not in [0, ${R - 1}]`); // tfjs cpu's message
}

/** Reference: x [R, S] rows picked by idx [N] -> [N, S]. */
export function gatherV2Ref(x: Float32Array, idx: Int32Array, R: number, S: number): Float32Array {
  const out = new Float32Array(idx.length * S);
  for (let n = 0; n < idx.length; n++) {
    const r = idx[n];
    if (r < 0 || r >= R) throw outOfRange(r, R);
    out.set(x.subarray(r * S, (r + 1) * S), n * S);
  }
  return out;
}

/** The same memory as float32 elements. */
function bits(v: Int32Array): Float32Array {
  return new Float32Array(v.buffer, v.byteOffset, v.length);
}

function cpuGather(args: KernelArgs): TensorInfo {
  return getKernel(GatherV2, 'cpu')!.kernelFunc(args as never) as TensorInfo;
}

export function gatherV2Native(args: KernelArgs): TensorInfo {
  const { x, indices } = args.inputs;
  const { axis, batchDims } = args.attrs as { axis: number; batchDims?: number };
  const rows = x.shape.length > 0 && util.parseAxisParam(axis, x.shape)[0] === 0;
  const int = x.dtype === 'int32';
  if ((!int && x.dtype !== 'float32') || indices.dtype !== 'int32' || !rows || (batchDims ?? 0) !== 0)
    return cpuGather(args);
  const R = x.shape[0],
    S = util.sizeFromShape(x.shape.slice(1)),
    N = util.sizeFromShape(indices.shape);
  if (N * S === 0) return cpuGather(args);
  const idx = i32(args.backend, indices);
  // int32 rows travel as the same 32 bits through the addon's float32 arrays (memcpy: no value is converted).
  const out = int ? new Int32Array(N * S) : alloc(args.backend, N * S, false); // every row is written
  const xs = int ? bits(i32(args.backend, x)) : f32(args.backend, x);
  const bad = nativeAddon().gatherV2(xs, idx, int ? bits(out as Int32Array) : (out as Float32Array), R, S);
  if (bad >= 0) throw outOfRange(idx[bad], R);
  return args.backend.makeTensorInfo([...indices.shape, ...x.shape.slice(1)], x.dtype, out);
}

export const gatherV2Config: KernelConfig = {
  kernelName: GatherV2,
  backendName: 'native',
  kernelFunc: gatherV2Native as unknown as KernelFunc,
};
