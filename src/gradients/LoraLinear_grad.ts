// Gradient of LoraLinear: one LoraLinearGrad call gives dx (base path), dxl (LoRA path; the tape adds the two
// when xl is dropout(x); with attr sharedX x is no input and dx holds both), dA and dB. W and bias are frozen
// base weights: asking for their gradient is an error.
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap } from '@tensorflow/tfjs-core';
import { LoraLinear, LoraLinearGrad } from '../kernel_names.ts';

export const loraLinearGradConfig: GradConfig = {
  kernelName: LoraLinear,
  inputsToSave: ['xl', 'W', 'A', 'B'],
  outputsToSave: [false, true],
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const [xl, W, A, B, u] = saved;
    const dy = Array.isArray(dys) ? dys[0] : dys;
    const outs = tf.engine().runKernel(LoraLinearGrad, { dy, xl, W, A, B, u }, attrs) as tf.Tensor[];
    // sharedX (no dropout): x is not an input; xl's gradient already holds both paths.
    const [dx, dxl, dA, dB] = attrs.sharedX === true ? [outs[0], outs[0], outs[1], outs[2]] : outs;
    const frozen = (n: string) => () => {
      throw new Error(`loraLinear: no gradient wrt ${n} (frozen base weight)`);
    };
    return { x: () => dx, xl: () => dxl, A: () => dA, B: () => dB, W: frozen('W'), bias: frozen('bias') };
  },
};
