// Parity: native Add/Sub/Multiply/RealDiv (numpy broadcasts, int32 fallback), Transpose, Softmax and
// UnsortedSegmentSum (gather gradient) vs the tfjs cpu kernels; maxdiff printed.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.ts';
import { nativeAvailability } from '../../src/backend/native_backend.ts';
import { cpuKernelCalls, cpuNativeDiff, rand } from '../helpers/index.ts';

const native = nativeAvailability();

describe.skipIf(!native.ok)(`native elementwise kernels${native.ok ? '' : ' (SKIPPED: ' + native.detail + ')'}`, () => {
  beforeAll(async () => {
    await initBackend({});
  });

  const shapes: [number[], number[]][] = [
    [
      [3, 4, 5],
      [3, 4, 5],
    ],
    [[3, 4, 5], [5]],
    [[5], [3, 4, 5]],
    [[3, 4, 5], []],
    [
      [3, 4, 5],
      [1, 4, 5],
    ],
    [
      [3, 4, 5],
      [3, 1, 5],
    ],
    [
      [3, 1],
      [1, 4],
    ],
    [
      [2, 3, 4, 5],
      [3, 1, 1],
    ],
  ];
  const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ['add', tf.add],
    ['sub', tf.sub],
    ['mul', tf.mul],
    ['div', tf.div],
  ];
  for (const [name, op] of ops) {
    for (const [sa, sb] of shapes) {
      it(`${name} [${sa}] [${sb}]`, async () => {
        const a = rand(
            sa.reduce((x, y) => x * y, 1),
            1,
            2,
          ),
          b = rand(
            sb.reduce((x, y) => x * y, 1),
            2,
            2,
          );
        const d = await cpuNativeDiff(() => op(tf.tensor(a, sa), tf.tensor(b, sb)));
        console.log(`${name} [${sa}] [${sb}] maxdiff=${d.toExponential(2)}`);
        expect(d).toBeLessThan(1e-6);
      });
    }
  }

  it('int32 add falls back to cpu', async () => {
    expect(await cpuNativeDiff(() => tf.add(tf.tensor1d([1, 2], 'int32'), tf.tensor1d([3, 4], 'int32')))).toBe(0);
    // The fallback ran (and a float32 add stays native).
    const add = (dtype: 'int32' | 'float32') => () =>
      tf.add(tf.tensor1d([1, 2], dtype), tf.tensor1d([3, 4], dtype)).dataSync();
    expect(await cpuKernelCalls('Add', add('int32'))).toBe(1);
    expect(await cpuKernelCalls('Add', add('float32'))).toBe(0);
  });

  for (const perm of [
    [1, 0],
    [0, 2, 1, 3],
    [2, 0, 1],
    [3, 1, 2, 0],
  ]) {
    it(`transpose perm [${perm}] (and its gradient)`, async () => {
      const shape = [2, 3, 4, 5].slice(0, perm.length),
        x = rand(
          shape.reduce((a, b) => a * b, 1),
          7,
          2,
        );
      const d = await cpuNativeDiff(() => {
        const t = tf.tensor(x, shape);
        return [
          tf.transpose(t, perm),
          tf.grad((y: tf.Tensor) => tf.sum(tf.mul(tf.transpose(y, perm), tf.transpose(t, perm))))(t),
        ];
      });
      console.log(`transpose [${perm}] maxdiff=${d.toExponential(2)}`);
      expect(d).toBe(0);
    });
  }

  it('softmax over the last axis, values and gradient', async () => {
    const x = rand(6 * 70, 3, 2),
      r = rand(6 * 70, 4, 2);
    const d = await cpuNativeDiff(() => {
      const t = tf.tensor(x, [2, 3, 70]);
      return [tf.softmax(t), tf.grad((y: tf.Tensor) => tf.sum(tf.mul(tf.softmax(y), tf.tensor(r, [2, 3, 70]))))(t)];
    });
    console.log(`softmax maxdiff=${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-6);
  });

  it('gather gradient (UnsortedSegmentSum) with repeated and unused rows', async () => {
    const table = rand(10 * 7, 5, 2),
      r = rand(6 * 7, 6, 2);
    const idx = [3, 3, 0, 9, 3, 5];
    const d = await cpuNativeDiff(() =>
      tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor1d(idx, 'int32')), tf.tensor(r, [6, 7]))))(
        tf.tensor(table, [10, 7]),
      ),
    );
    console.log(`gather grad maxdiff=${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-6);
  });
});
