// Native Add / Sub / Multiply / RealDiv (float32, numpy broadcasting), Transpose and Softmax (last axis) for
// the 'native' backend: C++ in kernels/Elementwise.cc. Other dtypes fall back to the tfjs cpu kernels.
import { backend_util, getKernel, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { nativeAddon } from '../backend/addon.ts';
import { alloc, f32, type KernelArgs } from './util.ts';

/** Element strides of `shape` seen through the broadcast `out` shape (0 along broadcast or missing dims). */
function broadcastStrides(shape: number[], out: number[]): Int32Array {
  const st = new Int32Array(out.length);
  let acc = 1;
  for (let d = out.length - 1, s = shape.length - 1; d >= 0; d--, s--) {
    const n = s >= 0 ? shape[s] : 1;
    st[d] = n === 1 ? 0 : acc;
    acc *= n;
  }
  return st;
}

/** The addon function of each binary kernel (kernels/Elementwise.cc, one template). */
type BinaryFn = 'add' | 'sub' | 'multiply' | 'realDiv';

function binaryKernel(kernelName: string, fn: BinaryFn): KernelConfig {
  const kernelFunc = ((args: KernelArgs) => {
    const { a, b } = args.inputs;
    const out = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const n = util.sizeFromShape(out);
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || n === 0 || out.length > 8) {
      return getKernel(kernelName, 'cpu')!.kernelFunc(args as never) as TensorInfo;
    }
    const values = alloc(args.backend, n, false); // every element written
    const shape = out.length ? out : [1];
    nativeAddon()[fn](
      f32(args.backend, a),
      f32(args.backend, b),
      values,
      Int32Array.from(shape),
      broadcastStrides(a.shape, shape),
      broadcastStrides(b.shape, shape),
    );
    return args.backend.makeTensorInfo(out, 'float32', values);
  }) as unknown as KernelFunc;
  return { kernelName, backendName: 'native', kernelFunc };
}

export const addConfig = binaryKernel('Add', 'add');
export const subConfig = binaryKernel('Sub', 'sub');
export const multiplyConfig = binaryKernel('Multiply', 'multiply');
export const realDivConfig = binaryKernel('RealDiv', 'realDiv');

export const softmaxConfig: KernelConfig = {
  kernelName: 'Softmax',
  backendName: 'native',
  kernelFunc: ((args: KernelArgs) => {
    const { logits } = args.inputs;
    const cols = logits.shape[logits.shape.length - 1];
    const dim = args.attrs.dim as number;
    if (logits.dtype !== 'float32' || (dim !== -1 && dim !== logits.shape.length - 1) || cols === 0) {
      return getKernel('Softmax', 'cpu')!.kernelFunc(args as never) as TensorInfo;
    }
    const values = alloc(args.backend, util.sizeFromShape(logits.shape), false);
    nativeAddon().softmax(f32(args.backend, logits), values, values.length / cols, cols);
    return args.backend.makeTensorInfo(logits.shape, 'float32', values);
  }) as unknown as KernelFunc,
};

export const transposeConfig: KernelConfig = {
  kernelName: 'Transpose',
  backendName: 'native',
  kernelFunc: ((args: KernelArgs) => {
    const { x } = args.inputs;
    const perm = args.attrs.perm as number[];
    const n = util.sizeFromShape(x.shape);
    if (x.dtype !== 'float32' || x.shape.length === 0 || x.shape.length > 8 || n === 0) {
      return getKernel('Transpose', 'cpu')!.kernelFunc(args as never) as TensorInfo;
    }
    const values = alloc(args.backend, n, false);
    nativeAddon().transpose(f32(args.backend, x), values, Int32Array.from(x.shape), Int32Array.from(perm));
    return args.backend.makeTensorInfo(
      perm.map((p) => x.shape[p]),
      'float32',
      values,
    );
  }) as unknown as KernelFunc,
};
