// Parity: native GatherV2 (row gather, kernels/GatherV2.cc) vs the tfjs cpu kernel and the TS reference
// gatherV2Ref, values and gradient (UnsortedSegmentSum vs unsortedSegmentSumRef); int32 params (packed bf16
// embeddings) copied bit for bit; the fallbacks (axis 1, batchDims) and out-of-range indices.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.ts';
import { nativeAvailability } from '../../src/backend/native_backend.ts';
import { gatherV2Ref, gatherV2Native } from '../../src/kernels/GatherV2.ts';
import { unsortedSegmentSumRef } from '../../src/kernels/UnsortedSegmentSum.ts';
import { cpuKernelCalls, cpuNativeDiff, rand, randInt } from '../helpers/index.ts';

const native = nativeAvailability();

describe.skipIf(!native.ok)(`native GatherV2${native.ok ? '' : ' (SKIPPED: ' + native.detail + ')'}`, () => {
  beforeAll(async () => {
    await initBackend({});
  });

  it('is the GatherV2 kernel registered for native', () => {
    expect(tf.getKernel('GatherV2', 'native')?.kernelFunc).toBe(gatherV2Native);
  });

  const cases: [string, number[], number[]][] = [
    ['embedding [V,C] by [N]', [1000, 64], [513]],
    ['large output (threads) [V,C] by [N]', [4096, 576], [2048]],
    ['rows of [R,C] by 2-D ids', [50, 7], [3, 11]],
    ['1-D params', [40], [17]],
    ['3-D params', [9, 4, 5], [12]],
  ];
  for (const [name, xs, is] of cases) {
    it(name, async () => {
      const x = rand(
          xs.reduce((a, b) => a * b, 1),
          5,
          2,
        ),
        idx = randInt(
          is.reduce((a, b) => a * b, 1),
          9,
          xs[0],
        );
      idx[0] = 0;
      idx[idx.length - 1] = xs[0] - 1; // both ends of the range
      const d = await cpuNativeDiff(() => tf.gather(tf.tensor(x, xs), tf.tensor(idx, is, 'int32')));
      await tf.setBackend('native');
      const ref = gatherV2Ref(x, idx, xs[0], x.length / xs[0]);
      const got = tf.tidy(() => tf.gather(tf.tensor(x, xs), tf.tensor(idx, is, 'int32')).dataSync());
      console.log(`gather ${name} maxdiff(native vs cpu)=${d.toExponential(2)}`);
      expect(d).toBe(0);
      expect(Float32Array.from(got)).toEqual(ref);
    });
  }

  it('gradient (UnsortedSegmentSum) through the native gather, repeated ids', async () => {
    const x = rand(30 * 6, 1, 2),
      r = rand(40 * 6, 2, 2),
      idx = randInt(40, 3, 30);
    const d = await cpuNativeDiff(() => {
      const w = tf.tensor(x, [30, 6]);
      return tf.grad((y: tf.Tensor) => tf.sum(tf.mul(tf.gather(y, tf.tensor1d(idx, 'int32')), tf.tensor(r, [40, 6]))))(
        w,
      );
    });
    console.log(`gather gradient maxdiff=${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-6);
  });

  it('UnsortedSegmentSum sums rows by id in row order, bit-equal to the reference; ids out of range dropped', async () => {
    await tf.setBackend('native');
    const x = rand(50 * 9, 6, 3),
      ids = randInt(50, 8, 12);
    ids[3] = -1;
    ids[7] = 12; // both dropped
    const got = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor(x, [50, 9]), tf.tensor1d(ids, 'int32'), 12).dataSync());
    expect(Float32Array.from(got)).toEqual(unsortedSegmentSumRef(x, ids, 12, 9));
    expect(
      await cpuKernelCalls('UnsortedSegmentSum', () =>
        tf.unsortedSegmentSum(tf.tensor(x, [50, 9]), tf.tensor1d(ids, 'int32'), 12).dataSync(),
      ),
    ).toBe(0);
  });

  it('int32 params (packed bf16 embeddings) are gathered natively, bit for bit', async () => {
    // Bit patterns that are NaNs, infinities and denormals as float32 must survive the float32-typed copy.
    const words = Int32Array.from([0x7fc00001, -1, 0x7f800000, 1, 0x3f80bf80, -0x7fffffff, 0, 123456789]);
    const params = () => tf.tensor2d(words, [4, 2], 'int32');
    const ids = () => tf.tensor1d([3, 0, 3, 1, 2], 'int32');
    await tf.setBackend('native');
    const got = tf.tidy(() => tf.gather(params(), ids()).dataSync());
    expect(got).toBeInstanceOf(Int32Array);
    expect(Array.from(got)).toEqual([3, 0, 3, 1, 2].flatMap((r) => [words[2 * r], words[2 * r + 1]]));
    expect(await cpuNativeDiff(() => tf.gather(params(), ids()))).toBe(0);
    expect(await cpuKernelCalls('GatherV2', () => tf.gather(params(), ids()).dataSync())).toBe(0);
  });

  it('falls back to cpu for axis 1 and batchDims 1', async () => {
    const x = rand(4 * 6, 4, 2);
    const ids = () => tf.tensor1d([2, 0], 'int32');
    expect(await cpuNativeDiff(() => tf.gather(tf.tensor(x, [4, 6]), tf.tensor1d([5, 1, 1], 'int32'), 1))).toBe(0);
    expect(
      await cpuNativeDiff(() =>
        tf.gather(
          tf.tensor(x, [4, 6]),
          tf.tensor2d(
            [
              [1, 0],
              [2, 2],
              [0, 5],
              [3, 3],
            ],
            [4, 2],
            'int32',
          ),
          1,
          1,
        ),
      ),
    ).toBe(0);
    expect(await cpuNativeDiff(() => tf.gather(tf.tensor(x, [4, 6]), tf.tensor1d([], 'int32')))).toBe(0);
    // The fallback ran: each of these calls the cpu kernel once; the float32 axis-0 gather does not call it.
    expect(await cpuKernelCalls('GatherV2', () => tf.gather(tf.tensor(x, [4, 6]), ids(), 1).dataSync())).toBe(1);
    expect(await cpuKernelCalls('GatherV2', () => tf.gather(tf.tensor(x, [4, 6]), ids()).dataSync())).toBe(0);
  });

  for (const bad of [-1, 30]) {
    it(`index ${bad} outside [0, 29] throws the cpu kernel's error`, async () => {
      const x = tf.tensor(rand(30 * 6, 1, 2), [30, 6]);
      const idx = new Int32Array([3, bad, 4]);
      const msgs: string[] = [];
      for (const b of ['cpu', 'native']) {
        await tf.setBackend(b);
        try {
          tf.tidy(() => tf.gather(x, tf.tensor1d(idx, 'int32')).dataSync());
          msgs.push('no error');
        } catch (e) {
          msgs.push((e as Error).message);
        }
      }
      expect(msgs[0]).toBe(`GatherV2: the index value ${bad} is not in [0, 29]`);
      expect(msgs[1]).toBe(msgs[0]);
      expect(() => gatherV2Ref(new Float32Array(30 * 6), idx, 30, 6)).toThrow(msgs[0]);
    });
  }
});
