// Gradient of Rope wrt x: the adjoint rotation of dy (Rope with transpose). cos/sin are position tables.
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap } from '@tensorflow/tfjs-core';
import { Rope } from '../kernel_names.ts';

export const ropeGradConfig: GradConfig = {
  kernelName: Rope,
  inputsToSave: ['cos', 'sin'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const [cos, sin] = saved;
    const t = !(attrs.transpose as boolean);
    return {
      x: () => tf.engine().runKernel(Rope, { x: dy as tf.Tensor, cos, sin }, { transpose: t }) as tf.Tensor,
      cos: () => {
        throw new Error('rope: no gradient wrt the cos table');
      },
      sin: () => {
        throw new Error('rope: no gradient wrt the sin table');
      },
    };
  },
};
