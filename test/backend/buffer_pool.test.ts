// The native backend's buffer pool: recycled outputs never alias live data, and training steps are
// bit-identical with and without it, with no tensor leak.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BufferPool, sizeClass } from '../../src/backend/buffer_pool.ts';
import { initBackend } from '../../src/backend/index.ts';
import { nativeAvailability, useValues, type NativeBackend } from '../../src/backend/native_backend.ts';
import { lossAndGrads } from '../../src/model/model.ts';
import { accumulateStep } from '../../src/train/step.ts';
import { makeBatch, randomLora, tinyModel } from '../model/helpers.ts';

const native = nativeAvailability();
const N = 1 << 15; // above the pool's minimum length

describe('BufferPool', () => {
  it('recycles only its own buffers, by exact length, and never a disowned one', () => {
    const pool = new BufferPool();
    const a = pool.alloc(N, false);
    pool.release(a.buffer);
    const b = pool.alloc(N, false);
    expect(b.buffer).toBe(a.buffer);
    pool.release(b.buffer);
    const c = pool.alloc(N, true);
    expect(c.buffer).toBe(b.buffer);
    expect(c.every((v) => v === 0)).toBe(true);
    pool.disown(c.buffer);
    pool.release(c.buffer);
    expect(pool.alloc(N, false).buffer).not.toBe(c.buffer);
    const user = new Float32Array(N);
    pool.release(user.buffer); // a caller's array is never taken
    expect(pool.alloc(N, false).buffer).not.toBe(user.buffer);
    expect(pool.alloc(16, false).length).toBe(16); // small arrays bypass the pool
  });
});

describe('BufferPool sizes', () => {
  it('rounds lengths up to 8 classes per octave and hands out views of their first n floats', () => {
    expect([N, N + 1, N + N / 8, N + N / 8 + 1, 3 * N].map(sizeClass)).toEqual([
      N,
      N + N / 8,
      N + N / 8,
      N + N / 4,
      3 * N,
    ]);
    for (let n = 1 << 14; n < 1 << 22; n += 9973) expect(sizeClass(n) / n).toBeLessThanOrEqual(1.125);
    const pool = new BufferPool();
    const a = pool.alloc(N + 5, false);
    expect(a.length).toBe(N + 5);
    expect(a.buffer.byteLength).toBe(4 * sizeClass(N + 5));
    pool.release(a.buffer);
    const b = pool.alloc(N + 100, true); // another length of the same class: the same buffer, zeroed over n
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(N + 100);
    expect(b.every((v) => v === 0)).toBe(true);
  });

  it('holds no more free bytes than it ever had live, letting the least recently released class go', () => {
    const pool = new BufferPool();
    const small = [pool.alloc(N), pool.alloc(N), pool.alloc(N)];
    for (const a of small) pool.release(a.buffer);
    expect(pool.highWater).toBe(3 * 4 * N);
    const big = pool.alloc(2 * N); // a new length: no free buffer fits it
    pool.release(big.buffer); // over the high-water mark: two of the small ones make room
    expect(pool.bytes).toBe(3 * 4 * N);
    expect(pool.alloc(2 * N).buffer).toBe(big.buffer);
    expect(pool.alloc(N).buffer).toBe(small[0].buffer);
    expect(pool.alloc(N).buffer).not.toBe(small[1].buffer);
  });

  it('keeps up to 1/8 more free bytes than the high-water mark (classes peak at different times)', () => {
    const pool = new BufferPool();
    const eight = Array.from({ length: 8 }, () => pool.alloc(N));
    for (const a of eight) pool.release(a.buffer); // free: the high-water mark, 32 N bytes
    const half = pool.alloc(N / 2); // a new class while all eight are free
    expect(pool.freshBytes).toBe(34 * N);
    pool.release(half.buffer); // 34 N <= 36 N: nothing goes
    expect(pool.bytes).toBe(34 * N);
    const hits = pool.hits;
    for (let i = 0; i < 8; i++) pool.alloc(N);
    pool.alloc(N / 2);
    expect(pool.hits - hits).toBe(9); // all recycled
    expect(pool.freshBytes).toBe(34 * N);
  });
});

describe.skipIf(!native.ok)('native backend with the pool', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'native' });
  });

  it('keeps a buffer while a slice view of it lives, and after dataSync', async () => {
    await tf.setBackend('native');
    const backend = tf.backend() as NativeBackend;
    const x = tf.add(tf.ones([N]), tf.ones([N])); // pooled output
    const view = tf.slice(x, [N / 2], [N / 2]); // cpu Slice: a subarray of x's buffer
    x.dispose();
    const hits = backend.pool.hits;
    const y = tf.add(tf.fill([N], 3), tf.fill([N], 4)); // same length: must not reuse x's buffer yet
    expect(tf.min(view).dataSync()[0]).toBe(2); // (view.dataSync() would disown the buffer for good)
    expect(tf.max(view).dataSync()[0]).toBe(2);
    view.dispose();
    const z = tf.mul(y, tf.fill([N], 1)); // now x's buffer is free again
    expect(backend.pool.hits).toBeGreaterThan(hits);
    const read = z.dataSync();
    z.dispose();
    const w = tf.add(y, y); // z's buffer escaped through dataSync: never recycled
    expect(read.every((v) => v === 7)).toBe(true);
    tf.dispose([y, w]);
  });

  it("useValues reads a tensor in place, disposes it, and its buffer is recycled (dataSync's is not)", async () => {
    await tf.setBackend('native');
    const backend = tf.backend() as NativeBackend;
    const x = tf.add(tf.ones([N]), tf.ones([N])); // pooled output
    const buf = backend.borrowSync(x.dataId) as Float32Array;
    expect(useValues(x, (v) => v[0] + v[N - 1])).toBe(4);
    expect(x.isDisposed).toBe(true);
    const hits = backend.pool.hits;
    const y = tf.add(tf.fill([N], 3), tf.fill([N], 4)); // x's buffer, recycled
    expect(backend.pool.hits).toBe(hits + 1);
    expect((backend.borrowSync(y.dataId) as Float32Array).buffer).toBe(buf.buffer);
    expect(useValues(y, (v) => v.every((e) => e === 7))).toBe(true);
    const z = tf.add(tf.ones([N]), tf.ones([N])); // y's buffer again
    const zbuf = (backend.borrowSync(z.dataId) as Float32Array).buffer;
    expect(z.dataSync()[0]).toBe(2); // handed out for good
    z.dispose();
    expect(backend.pool.owns(zbuf)).toBe(false);
  });

  it('training steps are bit-identical with and without the pool; no tensor leaks', async () => {
    const base = await tinyModel({
      family: 'qwen3',
      vocab: 64,
      hidden: 128,
      intermediate: 256,
      layers: 2,
      heads: 4,
      kvHeads: 2,
    });
    await tf.setBackend('native');
    const backend = tf.backend() as NativeBackend;
    const T = 128;
    const ids = Array.from({ length: T }, (_, t) => (t * 7 + 3) % 64);
    const batch = makeBatch([{ ids }]);
    const steps = (pooled: boolean) => {
      backend.pool.enabled = pooled;
      backend.pool.clear();
      const lora = randomLora(base, 8, 16, 5);
      const out: number[][] = [];
      const counts: number[] = [];
      for (let s = 0; s < 3; s++) {
        const r = lossAndGrads(base, lora, batch);
        out.push([r.lossSum, ...[...r.grads.values()].flatMap((g) => Array.from(g.dataSync()))]);
        tf.tidy(() => {
          for (const [n, v] of lora) v.assign(tf.sub(v, tf.mul(r.grads.get(n)!, 1e-3)));
        });
        tf.dispose([...r.grads.values()]);
        counts.push(tf.memory().numTensors);
      }
      lora.dispose();
      return { out, counts };
    };
    const hits0 = backend.pool.hits;
    const a = steps(true);
    const poolHits = backend.pool.hits - hits0;
    const b = steps(false);
    backend.pool.enabled = true;
    let maxdiff = 0;
    a.out.forEach((row, s) =>
      row.forEach((v, i) => {
        maxdiff = Math.max(maxdiff, Math.abs(v - b.out[s][i]));
      }),
    );
    console.log(
      `pool on vs off over 3 steps: maxdiff=${maxdiff.toExponential(2)}, pool hits ${poolHits}, numTensors ${a.counts}`,
    );
    expect(poolHits).toBeGreaterThan(0);
    expect(maxdiff).toBe(0);
    expect(new Set(a.counts).size).toBe(1); // the same number of live tensors after every step
    expect(new Set(b.counts).size).toBe(1);
  });

  it('accumulateStep hands every gradient buffer back: later steps allocate nothing new', async () => {
    const base = await tinyModel({
      family: 'qwen3',
      vocab: 64,
      hidden: 128,
      intermediate: 2048, // gate/up B and down A: 16384 floats, pooled
      layers: 2,
      heads: 4,
      kvHeads: 2,
    });
    await tf.setBackend('native');
    const backend = tf.backend() as NativeBackend;
    backend.pool.clear();
    const lora = randomLora(base, 8, 16, 5);
    const row = (k: number) => ({ ids: Array.from({ length: 128 }, (_, t) => (t * k + 3) % 64) });
    const [a, b] = [makeBatch([row(7)]), makeBatch([row(11)])];
    const both = makeBatch([row(7), row(11)]);
    const fresh: number[] = [];
    for (let s = 0; s < 3; s++) {
      const f0 = backend.pool.freshBytes;
      accumulateStep([a, b], (m) => lossAndGrads(base, lora, m));
      fresh.push(backend.pool.freshBytes - f0);
    }
    expect(fresh[0]).toBeGreaterThan(0);
    expect(fresh.slice(1)).toEqual([0, 0]); // with dataSync, each step's gradient buffers were new
    // two micro-batches and one batch of both rows: the same step
    const two = accumulateStep([a, b], (m) => lossAndGrads(base, lora, m));
    const one = accumulateStep([both], (m) => lossAndGrads(base, lora, m));
    let maxdiff = 0;
    for (const [n, g] of two.grads)
      g.forEach((v, i) => (maxdiff = Math.max(maxdiff, Math.abs(v - one.grads.get(n)![i]))));
    expect(maxdiff).toBeLessThan(1e-6);
    expect(two.tokens).toBe(one.tokens);
    lora.dispose();
  });
});
