// Gradient of GeluTanhMul: one GeluTanhMulGrad kernel call gives dgate and dup.
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig } from '@tensorflow/tfjs-core';
import { GeluTanhMul, GeluTanhMulGrad } from '../kernel_names.ts';

export const geluTanhMulGradConfig: GradConfig = {
  kernelName: GeluTanhMul,
  inputsToSave: ['gate', 'up'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
    const [gate, up] = saved;
    const [dg, du] = tf.engine().runKernel(GeluTanhMulGrad, { dy: dy as tf.Tensor, gate, up }) as tf.Tensor[];
    return { gate: () => dg, up: () => du };
  },
};
