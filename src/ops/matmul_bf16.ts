// matMulBf16(x, W): matmul with a frozen 16-bit weight. bf16 weights are kept 16-bit as int32 tensors holding
// two bf16 values each (tfjs has no bf16 dtype): [R, C] bf16 -> int32 [R, C/2], C even.
import * as tf from '@tensorflow/tfjs-core';
import { MatMulBf16 } from '../kernel_names.ts';

/** A packed bf16 weight from raw bf16 bits [R, C] (C even); shares `bits`' memory. */
export function bf16Tensor(bits: Uint16Array, shape: number[]): tf.Tensor {
  const last = shape[shape.length - 1];
  if (last % 2 !== 0) throw new Error(`bf16Tensor: last dimension ${last} is odd (two bf16 values per int32)`);
  if (bits.byteOffset % 4 !== 0) bits = bits.slice();
  return tf.tensor(
    new Int32Array(bits.buffer, bits.byteOffset, bits.length / 2),
    [...shape.slice(0, -1), last / 2],
    'int32',
  );
}

/** True for a packed bf16 weight. */
export function isBf16(W: tf.Tensor): boolean {
  return W.dtype === 'int32';
}

/** The logical shape of a weight (packed bf16 [R, C/2] -> [R, C]). */
export function logicalShape(W: tf.Tensor): number[] {
  return isBf16(W) ? [...W.shape.slice(0, -1), 2 * W.shape[W.shape.length - 1]] : W.shape;
}

/**
 * y = x W^T (transposeW, W [Nout, K]) or x W (W [K, Nout]) with W a packed bf16 weight: x is rounded to bf16,
 * products summed in fp32 (torch.autocast's bf16 matmul). Differentiable wrt x only (W is frozen).
 */
export function matMulBf16(x: tf.Tensor2D, W: tf.Tensor2D, transposeW = true): tf.Tensor2D {
  const [, K] = x.shape;
  const ws = logicalShape(W);
  if (!isBf16(W) || ws.length !== 2 || (transposeW ? ws[1] : ws[0]) !== K) {
    throw new Error(
      `matMulBf16: x [N,${K}] and a packed bf16 W ${transposeW ? '[Nout,K]' : '[K,Nout]'} expected, got W ${W.dtype} [${ws}]`,
    );
  }
  return tf.engine().runKernel(MatMulBf16, { x, W }, { transposeW }) as tf.Tensor2D;
}
