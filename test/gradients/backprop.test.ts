// The freeing gradient walk (src/gradients/backprop.ts): the same gradients as tfjs-core's walk, bit for bit, on
// a decoder and on a checkpointed one; no tensor left behind; and memory during the backward that stays flat
// along a chain where tfjs-core's walk keeps every gradient until the end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.ts';
import { nativeAvailability } from '../../src/backend/native_backend.ts';
import { useFreeingBackprop } from '../../src/gradients/backprop.ts';
import { lossAndGrads } from '../../src/model/model.ts';
import { makeBatch, randomLora, tinyModel } from '../model/helpers.ts';

const backends = nativeAvailability().ok ? ['cpu', 'native'] : ['cpu'];

beforeAll(async () => {
  await initBackend({ backend: backends.at(-1) as 'cpu' | 'native' });
});
afterAll(() => useFreeingBackprop(true));

/** Loss and every LoRA gradient of one step, flattened; and the live tensor count afterwards. */
async function step(freeing: boolean, checkpoint: boolean) {
  useFreeingBackprop(freeing);
  const base = await tinyModel({
    family: 'qwen3',
    vocab: 64,
    hidden: 64,
    intermediate: 128,
    layers: 2,
    heads: 4,
    kvHeads: 2,
  });
  const lora = randomLora(base, 4, 8, 3);
  const ids = Array.from({ length: 48 }, (_, t) => (t * 5 + 1) % 64);
  const before = tf.memory().numTensors;
  const r = lossAndGrads(base, lora, makeBatch([{ ids: ids.slice(0, 30) }, { ids: ids.slice(30) }]), { checkpoint });
  const values = [r.lossSum, ...[...r.grads.values()].flatMap((g) => Array.from(g.dataSync()))];
  tf.dispose([...r.grads.values()]);
  const leaked = tf.memory().numTensors - before;
  lora.dispose();
  return { values, leaked };
}

describe('freeing backprop', () => {
  for (const name of backends)
    for (const checkpoint of [false, true])
      it(`gives tfjs-core's gradients bit for bit (${name}, checkpoint ${checkpoint}), leaving no tensor`, async () => {
        await tf.setBackend(name);
        const ours = await step(true, checkpoint);
        const theirs = await step(false, checkpoint);
        expect(ours.values.length).toBeGreaterThan(1000);
        expect(ours.values).toEqual(theirs.values);
        expect(ours.leaked).toBe(0);
        expect(theirs.leaked).toBe(0);
      });

  it('keeps the backward flat along a chain (tfjs-core: every gradient until the end)', async () => {
    await tf.setBackend('cpu');
    const L = 24,
      N = 1 << 16;
    const peak = (freeing: boolean) => {
      useFreeingBackprop(freeing);
      let max = 0;
      // A node that records the bytes alive when its gradient runs.
      const probe = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
        const x = args[0] as tf.Tensor;
        (args[1] as tf.GradSaveFunc)([]);
        return {
          value: tf.mul(x, 1.01),
          gradFunc: (dy: tf.Tensor) => {
            max = Math.max(max, tf.memory().numBytes);
            return tf.mul(dy, 1.01);
          },
        };
      });
      const w = tf.variable(tf.fill([N], 0.5));
      const start = tf.memory().numBytes;
      const { value, grads } = tf.variableGrads(() => {
        let h = tf.mul(w, 2) as tf.Tensor;
        for (let i = 0; i < L; i++) h = probe(tf.sin(h)) as tf.Tensor;
        return tf.sum(h);
      }, [w]);
      const g = grads[w.name].dataSync();
      tf.dispose([value, grads[w.name], w]);
      return { extra: (max - start) / (N * 4), g };
    };
    const ours = peak(true);
    const theirs = peak(false);
    console.log(`chain of ${L}: peak arrays alive during backward: freeing ${ours.extra}, tfjs-core ${theirs.extra}`);
    expect(Array.from(ours.g)).toEqual(Array.from(theirs.g));
    expect(theirs.extra).toBeGreaterThan(2 * L); // its activations plus the gradients so far
    expect(ours.extra).toBeLessThan(L + 10); // the activations not yet walked, a few gradients
  });
});
