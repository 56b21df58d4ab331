// geluTanhMul(gate, up): gelu_tanh(gate) * up (the Gemma MLP activation, HF gelu_pytorch_tanh), one elementwise kernel.
import * as tf from '@tensorflow/tfjs-core';
import { GeluTanhMul } from '../kernel_names.ts';

/** 0.5 gate (1 + tanh(sqrt(2/pi) (gate + 0.044715 gate^3))) * up; gate and up of the same shape. Differentiable wrt both. */
export function geluTanhMul<T extends tf.Tensor>(gate: T, up: T): T {
  if (gate.shape.join() !== up.shape.join())
    throw new Error(`geluTanhMul: gate [${gate.shape}] and up [${up.shape}] differ`);
  return tf.engine().runKernel(GeluTanhMul, { gate, up }) as T;
}
