// Gradient of WeightedCrossEntropy wrt h: the forward kernel already computed dloss/dh; scale by dloss.
// The lm_head W is a frozen base weight here: asking for its gradient is an error, not a silent zero.
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig } from '@tensorflow/tfjs-core';
import { WeightedCrossEntropy } from '../kernel_names.ts';

export const weightedCrossEntropyGradConfig: GradConfig = {
  kernelName: WeightedCrossEntropy,
  outputsToSave: [false, true],
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
    const dloss = (dys as tf.Tensor[])[0];
    const [dh] = saved;
    if (dh.shape[0] === 0 && dh.size === 0)
      throw new Error('crossEntropyWeighted: computed with withGrad false, it has no gradient');
    return {
      h: () => tf.mul(dh, dloss),
      W: () => {
        throw new Error('crossEntropyWeighted: no gradient wrt the lm_head weight (it is frozen)');
      },
      labels: () => tf.zeros(dh.shape.slice(0, 1), 'int32'),
      weights: () => {
        throw new Error('crossEntropyWeighted: no gradient wrt the token weights');
      },
    };
  },
};
