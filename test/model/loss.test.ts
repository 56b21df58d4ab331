import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { chunkedWeightedCE, lossChunkRows } from '../../src/model/loss.ts';
import { Rng } from '../../src/util/random.ts';
import { ensureBackend } from './helpers.ts';
import { maxAbs, maxdiff } from '../helpers/index.ts';

describe('chunked weighted cross-entropy', () => {
  it('equals the unchunked log-softmax loss and its gradient, for any chunk size', async () => {
    await ensureBackend();
    const rng = new Rng(1);
    const M = 37,
      C = 16,
      V = 50;
    const h = tf.tensor2d(rng.fillNormal(M * C, 1), [M, C]);
    const W = tf.tensor2d(rng.fillNormal(V * C, 0.5), [V, C]);
    const labels = Int32Array.from({ length: M }, (_, i) => (i * 7) % V);
    const w = Float32Array.from({ length: M }, (_, i) => (i % 5 === 0 ? 0 : i % 3 === 0 ? 2 : 1));
    const direct = (x: tf.Tensor) => {
      const lp = tf.logSoftmax(tf.matMul(x as tf.Tensor2D, W, false, true));
      return tf.neg(
        tf.sum(
          tf.mul(tf.sum(tf.mul(lp, tf.oneHot(tf.tensor1d(labels, 'int32'), V, 1, 0, 'float32')), 1), tf.tensor1d(w)),
        ),
      );
    };
    const want = tf.valueAndGrad((x: tf.Tensor) => tf.mul(direct(x), 3))(h); // dy = 3 checks the chain rule
    for (const [rows, eagerGrad] of [
      [1, false],
      [5, true],
      [16, false],
      [16, true],
      [1000, true],
    ] as const) {
      const got = tf.valueAndGrad((x: tf.Tensor) =>
        tf.mul(chunkedWeightedCE(x as tf.Tensor2D, W, labels, w, { rowsPerChunk: rows, eagerGrad }), 3),
      )(h);
      const dv = Math.abs(got.value.dataSync()[0] - want.value.dataSync()[0]) / want.value.dataSync()[0];
      const dg = maxdiff(got.grad.dataSync(), want.grad.dataSync()) / maxAbs(want.grad.dataSync());
      console.log(
        `chunk ${rows} rows${eagerGrad ? ' (eager grad)' : ''}: loss rel diff ${dv.toExponential(2)}, grad rel maxdiff ${dg.toExponential(2)}`,
      );
      expect(dv).toBeLessThan(1e-6);
      expect(dg).toBeLessThan(1e-5);
    }
  });

  it('keeps a chunk of logits near 64 MB for large vocabularies', () => {
    expect(lossChunkRows(151936)).toBe(110);
    expect(lossChunkRows(262144)).toBe(64);
    expect(lossChunkRows(256)).toBe(512);
  });
});
