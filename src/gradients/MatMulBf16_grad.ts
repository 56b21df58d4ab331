// Gradient of MatMulBf16: dx = dy W (forward x W^T) or dy W^T (forward x W), again a bf16 matmul (autocast's
// backward). W is a frozen base weight: asking for its gradient is an error.
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap } from '@tensorflow/tfjs-core';
import { MatMulBf16 } from '../kernel_names.ts';

export const matMulBf16GradConfig: GradConfig = {
  kernelName: MatMulBf16,
  inputsToSave: ['W'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const [W] = saved;
    const g = Array.isArray(dy) ? dy[0] : dy;
    return {
      x: () => tf.engine().runKernel(MatMulBf16, { x: g, W }, { transposeW: attrs.transposeW !== true }) as tf.Tensor,
      W: () => {
        throw new Error('matMulBf16: no gradient wrt W (frozen base weight)');
      },
    };
  },
};
