// UnsortedSegmentSum for 'native' (the gradient of tf.gather): one scatter-add pass, O(N * inner)
// (kernels/GatherV2.cc), instead of tfjs-cpu's one masked pass per segment, O(numSegments * N * inner).
// x [N, ...inner], segmentIds int32 [N] -> [numSegments, ...inner]; ids outside [0, numSegments) are dropped (TF
// semantics). Other ranks and dtypes: cpu kernel. TS reference: unsortedSegmentSumRef.
import { getKernel, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { alloc, f32, i32, type KernelArgs } from './util.ts';
import { nativeAddon } from '../backend/addon.ts';

/** Reference: out [numSegments, inner] = sum of x [N, inner] rows by ids, in row order. */
export function unsortedSegmentSumRef(xs: Float32Array, ids: Int32Array, numSegments: number, inner: number) {
  const out = new Float32Array(numSegments * inner);
  for (let n = 0; n < ids.length; n++) {
    const s = ids[n];
    if (s < 0 || s >= numSegments) continue;
    for (let i = 0; i < inner; i++) out[s * inner + i] += xs[n * inner + i];
  }
  return out;
}

function unsortedSegmentSum(args: KernelArgs): TensorInfo {
  const { x, segmentIds } = args.inputs;
  const numSegments = args.attrs.numSegments as number;
  if (x.dtype !== 'float32' || segmentIds.shape.length !== 1 || x.shape[0] !== segmentIds.shape[0]) {
    return getKernel('UnsortedSegmentSum', 'cpu')!.kernelFunc(args as never) as TensorInfo;
  }
  const inner = util.sizeFromShape(x.shape.slice(1));
  const out = alloc(args.backend, numSegments * inner, true); // accumulated into: zeroed
  nativeAddon().unsortedSegmentSum(f32(args.backend, x), i32(args.backend, segmentIds), out, numSegments, inner);
  return args.backend.makeTensorInfo([numSegments, ...x.shape.slice(1)], 'float32', out);
}

export const unsortedSegmentSumConfig: KernelConfig = {
  kernelName: 'UnsortedSegmentSum',
  backendName: 'native',
  kernelFunc: unsortedSegmentSum as unknown as KernelFunc,
};
