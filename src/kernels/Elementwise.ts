// Native Add / Sub / Multiply / RealDiv (float32, equal shapes, scalars, or one operand repeating over the
// other's trailing dims, e.g. [T, C] + [C]) and Softmax (last axis) for the 'native' backend: C++ in
// kernels/Elementwise.cc. Other dtypes and broadcasts fall back to the tfjs cpu kernels.
import { backend_util, getKernel, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { nativeAddon } from '../backend/addon.ts';
import type { Addon } from './util.ts';
import { f32, type KernelArgs } from './util.ts';

/** True when `small` (leading 1s dropped) equals the trailing dims of `big`. */
function isSuffix(small: number[], big: number[]): boolean {
  let s = small;
  while (s.length && s[0] === 1) s = s.slice(1);
  return s.length <= big.length && s.every((d, i) => d === big[big.length - s.length + i]);
}

function binaryKernel(kernelName: string, op: number): KernelConfig {
  const kernelFunc = ((args: KernelArgs) => {
    const { a, b } = args.inputs;
    const out = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const na = util.sizeFromShape(a.shape), nb = util.sizeFromShape(b.shape), n = util.sizeFromShape(out);
    const ok = a.dtype === 'float32' && b.dtype === 'float32' && n > 0 &&
      ((na === n && isSuffix(b.shape, out)) || (nb === n && isSuffix(a.shape, out)));
    if (!ok) return getKernel(kernelName, 'cpu')!.kernelFunc(args as never) as TensorInfo;
    const values = new Float32Array(n);
    (nativeAddon() as Addon).binary(op, f32(args.backend, a), f32(args.backend, b), values, n, na, nb);
    return args.backend.makeTensorInfo(out, 'float32', values);
  }) as unknown as KernelFunc;
  return { kernelName, backendName: 'native', kernelFunc };
}

export const addConfig = binaryKernel('Add', 0);
export const subConfig = binaryKernel('Sub', 1);
export const multiplyConfig = binaryKernel('Multiply', 2);
export const realDivConfig = binaryKernel('RealDiv', 3);

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
    const values = new Float32Array(util.sizeFromShape(logits.shape));
    (nativeAddon() as Addon).softmax(f32(args.backend, logits), values, values.length / cols, cols);
    return args.backend.makeTensorInfo(logits.shape, 'float32', values);
  }) as unknown as KernelFunc,
};
