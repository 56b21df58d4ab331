// Gradient of Swiglu: one SwigluGrad kernel call gives dgate and dup.
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig } from '@tensorflow/tfjs-core';
import { Swiglu, SwigluGrad } from '../kernel_names.ts';

export const swigluGradConfig: GradConfig = {
  kernelName: Swiglu,
  inputsToSave: ['gate', 'up'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [gate, up] = saved;
    const [dg, du] = tf.engine().runKernel(SwigluGrad, { dy: dy as tf.Tensor, gate, up }, attrs) as tf.Tensor[];
    return { gate: () => dg, up: () => du };
  },
};
