// rope(x, cos, sin): HF rotate-half rotary position embedding, one kernel (no split/concat/neg).
import * as tf from '@tensorflow/tfjs-core';
import { Rope } from '../kernel_names.ts';

/**
 * x * cos + rotate_half(x) * sin with rotate_half(x) = cat(-x2, x1) on the last axis (HF apply_rotary_pos_emb).
 * x [N, h, D] (N = B*T tokens, h heads), cos/sin [N, D] (e.g. ropeTables in src/model/rope.ts). Differentiable wrt x.
 */
export function rope(x: tf.Tensor3D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor3D {
  const [N, , D] = x.shape;
  if (D % 2 !== 0 || cos.shape.join() !== `${N},${D}` || sin.shape.join() !== `${N},${D}`) {
    throw new Error(
      `rope: x [N,h,D] with even D and cos/sin [N,D] expected, got x ${x.shape}, cos ${cos.shape}, sin ${sin.shape}`,
    );
  }
  return tf.engine().runKernel(Rope, { x, cos, sin }, { transpose: false }) as tf.Tensor3D;
}
