// Shared helpers for the op tests: seeded inputs, maxdiff, and a central finite-difference gradient check.
import * as tf from '@tensorflow/tfjs-core';

import { randInt } from '../helpers/index.ts';

export { maxdiff, rand } from '../helpers/index.ts';

/** Values of f's outputs and of the gradients of sum(r * f(xs)) wrt xs, as plain arrays (runs in a tidy). */
export function valueAndGrads(
  f: (xs: tf.Tensor[]) => tf.Tensor,
  xs: () => tf.Tensor[],
  r: Float32Array,
): Float32Array[] {
  return tf.tidy(() => {
    const inputs = xs();
    const loss = (...a: tf.Tensor[]) => tf.sum(tf.mul(f(a), tf.tensor(r, f(a).shape)));
    const y = f(inputs).dataSync().slice() as Float32Array;
    const g = tf
      .grads(loss)(inputs)
      .map((t) => t.dataSync().slice() as Float32Array);
    return [y, ...g];
  });
}

/**
 * Central differences of L = sum(r * f(xs)) at `probes` seeded coordinates of each input vs the analytic
 * gradient; returns the worst |numeric - analytic| / max(1, |analytic|).
 */
export function fdCheck(
  f: (xs: tf.Tensor[]) => tf.Tensor,
  shapes: number[][],
  data: Float32Array[],
  r: Float32Array,
  probes = 6,
  eps = 1e-2,
): number {
  const mk = (d: Float32Array[]) => d.map((v, i) => tf.tensor(v, shapes[i]));
  const L = (d: Float32Array[]) =>
    tf.tidy(() => {
      let s = 0;
      const y = f(mk(d)).dataSync();
      for (let i = 0; i < y.length; i++) s += y[i] * r[i];
      return s;
    });
  const analytic = valueAndGrads(f, () => mk(data), r).slice(1);
  let worst = 0;
  data.forEach((x, i) => {
    const idx = randInt(probes, 99 + i, x.length);
    for (const j of idx) {
      const plus = data.map((d) => d.slice()),
        minus = data.map((d) => d.slice());
      plus[i][j] += eps;
      minus[i][j] -= eps;
      const num = (L(plus) - L(minus)) / (2 * eps);
      worst = Math.max(worst, Math.abs(num - analytic[i][j]) / Math.max(1, Math.abs(analytic[i][j])));
    }
  });
  return worst;
}
