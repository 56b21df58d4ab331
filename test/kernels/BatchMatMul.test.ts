// Parity: native BatchMatMul / _FusedMatMul vs the tfjs cpu kernels, every transpose combination, batch
// broadcasting, bias + activation epilogues, and gradients through tf.grads.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.ts';
import { nativeAvailability } from '../../src/backend/native_backend.ts';
import { cpuKernelCalls, cpuNativeDiff, rand } from '../helpers/index.ts';

const native = nativeAvailability();
const TOL = 1e-4;

/** Seeded random tensor that lives on whichever backend is active when it is read (data is plain JS). */
function rnd(shape: number[], seed: number): () => tf.Tensor {
  const v = rand(
    shape.reduce((a, b) => a * b, 1),
    seed,
  );
  return () => tf.tensor(v, shape);
}

describe.skipIf(!native.ok)(`native matmul parity${native.ok ? '' : ' (SKIPPED: ' + native.detail + ')'}`, () => {
  beforeAll(async () => {
    await initBackend({});
  });

  // [aShape, bShape] before transposes: a [...,M,K], b [...,K,N]
  const cases: [string, number[], number[]][] = [
    ['2d', [7, 5], [5, 3]],
    ['3d same batch', [4, 7, 5], [4, 5, 3]],
    ['3d x 2d', [4, 7, 5], [5, 3]],
    ['2d x 3d', [7, 5], [4, 5, 3]],
    ['4d x 3d', [2, 3, 7, 5], [3, 5, 3]],
    ['linear-layer like', [64, 96], [96, 80]],
  ];
  for (const [name, as, bs] of cases) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        it(`BatchMatMul ${name} tA=${tA} tB=${tB}`, async () => {
          const sw = (s: number[], t: boolean) => (t ? [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]] : s);
          const a = rnd(sw(as, tA), 1),
            b = rnd(sw(bs, tB), 2);
          const d = await cpuNativeDiff(() => tf.matMul(a(), b(), tA, tB));
          console.log(`BatchMatMul ${name} tA=${tA} tB=${tB} maxdiff=${d.toExponential(2)}`);
          expect(d).toBeLessThan(TOL);
        });
      }
    }
  }

  for (const activation of ['linear', 'relu', 'relu6', 'sigmoid', 'elu', 'leakyrelu', 'prelu'] as const) {
    for (const biasShape of [[3], [1], [7, 3]]) {
      it(`_FusedMatMul ${activation} bias [${biasShape}]`, async () => {
        const a = rnd([2, 7, 5], 3),
          b = rnd([3, 5], 4),
          bias = rnd(biasShape, 5),
          alpha = rnd([3], 6);
        const d = await cpuNativeDiff(() =>
          tf.fused.matMul({
            a: a(),
            b: b(),
            transposeB: true,
            bias: bias(),
            activation,
            preluActivationWeights: activation === 'prelu' ? alpha() : undefined,
            leakyreluAlpha: 0.1,
          }),
        );
        console.log(`_FusedMatMul ${activation} bias [${biasShape}] maxdiff=${d.toExponential(2)}`);
        expect(d).toBeLessThan(TOL);
      });
    }
  }

  it('general batch broadcasting [2,1] x [1,3] matches explicitly tiled operands (numpy semantics)', async () => {
    const a = rnd([2, 1, 4, 5], 11),
      b = rnd([1, 3, 5, 2], 12);
    await tf.setBackend('native');
    const got = tf.matMul(a(), b());
    const want = tf.matMul(tf.tile(a(), [1, 3, 1, 1]), tf.tile(b(), [2, 1, 1, 1])); // equal batch shapes
    const d = tf.max(tf.abs(tf.sub(got, want))).dataSync()[0];
    console.log(`BatchMatMul [2,1]x[1,3] vs tiled maxdiff=${d.toExponential(2)}`);
    expect(got.shape).toEqual([2, 3, 4, 2]);
    expect(d).toBeLessThan(1e-5);
  });

  it('int32 matmul falls back to cpu', async () => {
    const d = await cpuNativeDiff(() =>
      tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), tf.tensor2d([5, 6, 7, 8], [2, 2], 'int32')),
    );
    expect(d).toBe(0);
    // The fallback ran (and a float32 matmul stays native).
    const m = (dtype: 'int32' | 'float32') => () =>
      tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2], dtype), tf.tensor2d([5, 6, 7, 8], [2, 2], dtype)).dataSync();
    expect(await cpuKernelCalls('BatchMatMul', m('int32'))).toBe(1);
    expect(await cpuKernelCalls('BatchMatMul', m('float32'))).toBe(0);
  });

  it('does not write into its inputs (cpu Slice returns views)', async () => {
    await tf.setBackend('native');
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
    const view = tf.slice(x, [1, 0], [2, 2]);
    const y = tf.matMul(view, tf.eye(2));
    expect(Array.from(y.dataSync())).toEqual([3, 4, 5, 6]);
    expect(Array.from(x.dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
  });

  for (const [tA, tB] of [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ]) {
    it(`gradients through tf.grads, broadcast 3d x 2d, tA=${tA} tB=${tB}`, async () => {
      const a = rnd(tA ? [3, 5, 7] : [3, 7, 5], 7),
        b = rnd(tB ? [4, 5] : [5, 4], 8),
        bias = rnd([4], 9);
      const w = rnd([3, 7, 4], 10); // weights so the loss is not constant (sum of a softmax is 1)
      const d = await cpuNativeDiff(() => {
        const f = (x: tf.Tensor, y: tf.Tensor, c: tf.Tensor) =>
          tf.sum(
            tf.mul(
              w(),
              tf.softmax(tf.fused.matMul({ a: x, b: y, transposeA: tA, transposeB: tB, bias: c, activation: 'relu' })),
            ),
          );
        return tf.grads(f)([a(), b(), bias()]);
      });
      console.log(`grads tA=${tA} tB=${tB} maxdiff=${d.toExponential(2)}`);
      expect(d).toBeLessThan(TOL);
    });
  }
});
