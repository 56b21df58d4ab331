// Gradient of RmsNorm: one RmsNormGrad kernel call gives dx and dweight (from the saved rstd), with the forward's
// attributes (vectorSums; eps is not used).
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig } from '@tensorflow/tfjs-core';
import { RmsNorm, RmsNormGrad } from '../kernel_names.ts';

export const rmsNormGradConfig: GradConfig = {
  kernelName: RmsNorm,
  inputsToSave: ['x', 'weight'],
  outputsToSave: [false, true],
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [x, weight, rstd] = saved;
    const dy = Array.isArray(dys) ? dys[0] : dys;
    const [dx, dw] = tf.engine().runKernel(RmsNormGrad, { dy, x, weight, rstd }, attrs) as tf.Tensor[];
    return { x: () => dx, weight: () => dw };
  },
};
