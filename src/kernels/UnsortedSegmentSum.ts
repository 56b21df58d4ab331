// UnsortedSegmentSum for 'native' (the gradient of tf.gather), in TypeScript, not C++: registered on 'native' for
// its algorithm, not for native code. One scatter-add pass, O(N * inner), instead of
// tfjs-cpu's one masked pass per segment, O(numSegments * N * inner). x [N, ...inner], segmentIds int32 [N]
// -> [numSegments, ...inner]; ids outside [0, numSegments) are dropped (TF semantics). Other ranks: cpu kernel.
import { getKernel, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { alloc, f32, i32, type KernelArgs } from './util.ts';

function unsortedSegmentSum(args: KernelArgs): TensorInfo {
  const { x, segmentIds } = args.inputs;
  const numSegments = args.attrs.numSegments as number;
  if (x.dtype !== 'float32' || segmentIds.shape.length !== 1 || x.shape[0] !== segmentIds.shape[0]) {
    return getKernel('UnsortedSegmentSum', 'cpu')!.kernelFunc(args as never) as TensorInfo;
  }
  const inner = util.sizeFromShape(x.shape.slice(1));
  const xs = f32(args.backend, x),
    ids = i32(args.backend, segmentIds);
  const out = alloc(args.backend, numSegments * inner, true); // accumulated into: zeroed
  for (let n = 0; n < ids.length; n++) {
    const s = ids[n];
    if (s < 0 || s >= numSegments) continue;
    const o = s * inner,
      i0 = n * inner;
    for (let i = 0; i < inner; i++) out[o + i] += xs[i0 + i];
  }
  return args.backend.makeTensorInfo([numSegments, ...x.shape.slice(1)], 'float32', out);
}

export const unsortedSegmentSumConfig: KernelConfig = {
  kernelName: 'UnsortedSegmentSum',
  backendName: 'native',
  kernelFunc: unsortedSegmentSum as unknown as KernelFunc,
};
