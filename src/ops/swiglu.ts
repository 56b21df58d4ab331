// swiglu(gate, up): silu(gate) * up (the Llama/Qwen MLP activation), one elementwise kernel.
import * as tf from '@tensorflow/tfjs-core';
import { Swiglu } from '../kernel_names.ts';

/** gate * sigmoid(gate) * up; gate and up of the same shape. Differentiable wrt both. fastExp: see SwigluAttrs. */
export function swiglu<T extends tf.Tensor>(gate: T, up: T, opts: { fastExp?: boolean } = {}): T {
  if (gate.shape.join() !== up.shape.join())
    throw new Error(`swiglu: gate [${gate.shape}] and up [${up.shape}] differ`);
  return tf.engine().runKernel(Swiglu, { gate, up }, opts.fastExp ? { fastExp: true } : {}) as T;
}
