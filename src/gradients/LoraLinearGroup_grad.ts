// Gradient of LoraLinearGroup: one LoraLinearGroupGrad call gives dx (summed over the members: no tape Adds) and
// each member's dA, dB. A member output that reaches no loss gets a zero dy. W and bias are frozen base weights.
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap } from '@tensorflow/tfjs-core';
import { LoraLinearGroup, LoraLinearGroupGrad } from '../kernel_names.ts';
import { logicalShape } from '../ops/matmul_bf16.ts';

export const loraLinearGroupGradConfig: GradConfig = {
  kernelName: LoraLinearGroup,
  // Saved: the inputs in the op's order (x, then W, A, B of each member, then the biases), then the output U.
  saveAllInputs: true,
  outputsToSave: [true],
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const n = attrs.members as number;
    const [x, ...rest] = saved;
    const U = rest[rest.length - 1];
    const dyList = (Array.isArray(dys) ? dys : [dys]).slice(1); // dys[0]: U's (none)
    const inputs: Record<string, tf.Tensor> = { x, U };
    for (let i = 0; i < n; i++) {
      const [W, A, B] = rest.slice(3 * i, 3 * i + 3);
      inputs[`dy${i}`] = dyList[i] ?? tf.zeros([x.shape[0], logicalShape(W as tf.Tensor2D)[0]]);
      Object.assign(inputs, { [`W${i}`]: W, [`A${i}`]: A, [`B${i}`]: B });
    }
    const [dx, ...dAB] = tf.engine().runKernel(LoraLinearGroupGrad, inputs, attrs) as tf.Tensor[];
    const frozen = (name: string) => () => {
      throw new Error(`loraLinearGroup: no gradient wrt ${name} (frozen base weight)`);
    };
    // Keyed by input position: x, then W, A, B per member, then the biases.
    const grads: Record<string, () => tf.Tensor> = { 0: () => dx };
    for (let i = 0; i < n; i++) {
      grads[1 + 3 * i] = frozen(`W${i}`);
      grads[2 + 3 * i] = () => dAB[2 * i];
      grads[3 + 3 * i] = () => dAB[2 * i + 1];
    }
    for (let b = 1 + 3 * n; b < saved.length - 1; b++) grads[b] = frozen('a bias');
    return grads;
  },
};
