// Native BatchMatMul and _FusedMatMul for the 'native' backend: OpenBLAS sgemm in kernels/BatchMatMul.cc.
// Same semantics as tfjs-backend-cpu (a [...bA, M, K], b [...bB, K, N], transposes, broadcast batch dims),
// non-float32 inputs and unsupported epilogues fall back to the cpu kernels.
import { broadcast_util, getKernel, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { nativeAddon } from '../backend/addon.ts';

/** The Float32Array behind a tensor of the cpu/native backend (read-only: cpu Slice returns views). */
export function f32(backend: MathBackendCPU, t: TensorInfo): Float32Array {
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
}

/**
 * An output array of n floats from the backend's buffer pool ('native'; a fresh zeroed array elsewhere).
 * Contents are arbitrary unless `zero`: pass zero=false only when the kernel writes every element.
 */
export function alloc(backend: MathBackendCPU, n: number, zero: boolean): Float32Array {
  const pool = (backend as unknown as { pool?: { alloc(n: number, zero: boolean): Float32Array } }).pool;
  return pool ? pool.alloc(n, zero) : new Float32Array(n);
}

/** Index of the a/b batch entry for each output batch entry, numpy broadcasting over the outer dims. */
function batchIndex(outer: number[], out: number[]): Int32Array {
  const n = util.sizeFromShape(out);
  const idx = new Int32Array(n);
  const pad = out.length - outer.length;
  const strides = util.computeStrides(outer);
  for (let i = 0; i < n; i++) {
    let rem = i,
      off = 0;
    for (let d = out.length - 1; d >= 0; d--) {
      const coord = rem % out[d];
      rem = Math.floor(rem / out[d]);
      const od = d - pad;
      if (od >= 0 && outer[od] !== 1) off += coord * (od === outer.length - 1 ? 1 : strides[od]);
    }
    idx[i] = off;
  }
  return idx;
}

export const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2, sigmoid: 3, leakyrelu: 4, elu: 5 };

/** out = act(op(a) op(b) + bias); bias must have N or 1 values (checked by the caller). */
export function matMulImpl(
  backend: MathBackendCPU,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  bias?: Float32Array,
  act = 0,
  alpha = 0,
): TensorInfo {
  const ra = a.shape.length,
    rb = b.shape.length;
  const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const Kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  util.assert(
    K === Kb,
    () =>
      `Error in matMul: inner shapes (${K}) and (${Kb}) of Tensors with shapes ` +
      `${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
  );
  const outerA = a.shape.slice(0, -2),
    outerB = b.shape.slice(0, -2);
  const outer = broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  const bA = util.sizeFromShape(outerA),
    bB = util.sizeFromShape(outerB),
    batch = util.sizeFromShape(outer);
  // Index maps only when broadcasting is not "equal or one side is 1" (then i % bA, i % bB is exact).
  const simple = bA === bB || bA === 1 || bB === 1;
  const out = alloc(backend, batch * M * N, K === 0); // sgemm beta 0 writes every element (K > 0)
  nativeAddon().batchMatMul(
    f32(backend, a),
    f32(backend, b),
    out,
    bA,
    bB,
    M,
    N,
    K,
    transposeA,
    transposeB,
    bias ?? null,
    act,
    alpha,
    simple ? null : batchIndex(outerA, outer),
    simple ? null : batchIndex(outerB, outer),
  );
  return backend.makeTensorInfo([...outer, M, N], 'float32', out);
}

function cpuKernel(name: string): KernelFunc {
  return getKernel(name, 'cpu')!.kernelFunc;
}

function batchMatMul(args: {
  inputs: { a: TensorInfo; b: TensorInfo };
  backend: MathBackendCPU;
  attrs: NamedAttrMap;
}): TensorInfo {
  const {
    inputs: { a, b },
    backend,
    attrs,
  } = args;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return cpuKernel('BatchMatMul')(args as never) as TensorInfo;
  return matMulImpl(backend, a, b, attrs.transposeA as boolean, attrs.transposeB as boolean);
}

export const batchMatMulConfig: KernelConfig = {
  kernelName: 'BatchMatMul',
  backendName: 'native',
  kernelFunc: batchMatMul as unknown as KernelFunc,
};
