// Shared helpers for lorasft's fused kernels: typed views of cpu/native tensor data, and the pair of kernel
// configs (TS reference on 'cpu', native on 'native') built from one kernel function per implementation.
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { nativeAddon, type NativeAddon } from '../backend/addon.ts';
import { alloc, f32 } from './BatchMatMul.ts';

export { alloc, f32 };

export function i32(backend: MathBackendCPU, t: TensorInfo): Int32Array {
  const v = backend.data.get(t.dataId).values;
  return v instanceof Int32Array ? v : Int32Array.from(v as ArrayLike<number>);
}

/** The Attrs of a kernel that has none. */
export type NoAttrs = Record<string, never>;

/** A kernel's arguments, typed by its Inputs and Attrs from src/kernel_names.ts. */
export type KernelArgs<I = Record<string, TensorInfo>, A = NamedAttrMap> = {
  inputs: I;
  backend: MathBackendCPU;
  attrs: A;
};

/** Reads inputs as typed arrays, runs `impl` (ref or native), wraps the returned arrays as outputs. */
export type Impl<I, A> = (args: KernelArgs<I, A>, addon: NativeAddon) => Outputs;
type Outputs = Array<{ shape: number[]; values: Float32Array }>;

/** The kernel on 'cpu' (the TypeScript reference) and on 'native' (the addon). */
export function kernelConfigs<I, A>(
  kernelName: string,
  ref: (args: KernelArgs<I, A>) => Outputs,
  nat: Impl<I, A>,
): KernelConfig[] {
  const wrap = (
    impl: (args: KernelArgs<I, A>, addon: NativeAddon) => Outputs,
    get: () => NativeAddon | null,
  ): KernelFunc =>
    ((args: KernelArgs<I, A>) => {
      const outs = impl(args, get()!).map((o) => args.backend.makeTensorInfo(o.shape, 'float32', o.values));
      return outs.length === 1 ? outs[0] : outs;
    }) as unknown as KernelFunc;
  return [
    { kernelName, backendName: 'cpu', kernelFunc: wrap(ref, () => null) },
    { kernelName, backendName: 'native', kernelFunc: wrap(nat, nativeAddon) },
  ];
}
