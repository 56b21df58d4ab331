// Parity of the bf16 weight kernels (kernels/MatMulBf16.cc, oneDNN or the fp32 fallback) with their TS references
// on 'cpu': MatMulBf16 both ways and its gradient, LoraLinear and WeightedCrossEntropy with a packed bf16 W.
// The references round x to bf16 and sum in float64; native paths sum in fp32 (order differs): tolerance 1e-5
// relative to the output's scale.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.ts';
import { loadAddon } from '../../src/backend/addon.ts';
import { nativeAvailability } from '../../src/backend/native_backend.ts';
import { bf16Tensor, crossEntropyWeighted, loraLinear, loraLinearGroup, matMulBf16 } from '../../src/ops/index.ts';
import { f32ToBf16 } from '../../src/model/dtypes.ts';
import { roundBf16, weightF32 } from '../../src/kernels/MatMulBf16.ts';
import { maxdiff, rand } from '../ops/helpers.ts';

const native = nativeAvailability();
const addon = () =>
  loadAddon().addon as unknown as {
    setBf16Path(p: string): void;
    bf16Info(): { path: string; dnnl: boolean; impl: string; error: string; productSeconds: number };
  };

/** Values of f's outputs and of d sum(f * r)/d inputs on one backend. */
function run(f: (xs: tf.Tensor[]) => tf.Tensor, data: Float32Array[], shapes: number[][]): Float32Array[] {
  return tf.tidy(() => {
    const xs = data.map((d, i) => tf.tensor(d, shapes[i]));
    const y = f(xs);
    const r = tf.tensor(rand(y.size, 5), y.shape);
    const g = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(a), r)))(xs);
    return [y, ...g].map((t) => t.dataSync().slice() as Float32Array);
  });
}

const scaleOf = (a: Float32Array[]) => Math.max(...a.map((v) => Math.max(...v.map(Math.abs))));

const W16 = (n: number, seed: number, shape: number[]) => () =>
  bf16Tensor(f32ToBf16(rand(n, seed, 0.5)), shape) as tf.Tensor2D;

type Case = { name: string; shapes: number[][]; f: (xs: tf.Tensor[]) => tf.Tensor };
/** loraLinear on a bf16 W [out, inp]: 19 rows, rank 4, scale 2. */
const bf16Lora = (name: string, out: number, inp: number, seed: number): Case => ({
  name,
  shapes: [
    [19, inp],
    [4, inp],
    [out, 4],
  ],
  f: ([x, A, B]) =>
    loraLinear(x as tf.Tensor2D, W16(out * inp, seed, [out, inp])(), A as tf.Tensor2D, B as tf.Tensor2D, 2),
});
const CASES: Case[] = [
  {
    name: 'matMulBf16 x W^T',
    shapes: [[37, 64]],
    f: ([x]) => matMulBf16(x as tf.Tensor2D, W16(48 * 64, 3, [48, 64])(), true),
  },
  {
    name: 'matMulBf16 x W',
    shapes: [[37, 48]],
    f: ([x]) => matMulBf16(x as tf.Tensor2D, W16(48 * 64, 3, [48, 64])(), false),
  },
  {
    name: 'loraLinear bf16 W',
    shapes: [
      [29, 64],
      [4, 64],
      [40, 4],
    ],
    f: ([x, A, B]) => loraLinear(x as tf.Tensor2D, W16(40 * 64, 9, [40, 64])(), A as tf.Tensor2D, B as tf.Tensor2D, 2),
  },
  {
    // Rank 11 (a group of 8 and one of 3), in/out not multiples of 16, 150 rows (three row blocks), bias, and a
    // separate LoRA input (dropout): every tail of the fused AVX-512 passes (kernels/LoraLinearBf16.cc).
    name: 'loraLinear bf16 W, rank 11, bias, dropout input',
    shapes: [
      [150, 70],
      [150, 70],
      [11, 70],
      [45, 11],
    ],
    f: ([x, xl, A, B]) =>
      loraLinear(x as tf.Tensor2D, W16(45 * 70, 13, [45, 70])(), A as tf.Tensor2D, B as tf.Tensor2D, 0.5, {
        bias: tf.tensor1d(rand(45, 17)),
        xLora: xl as tf.Tensor2D,
      }),
  },
  // out = 2048: the backward's dy W sums over K = 2048, where oneDNN runs gemm:jit instead of its brgemm
  // (kernels/Dnnl.cc, choosePd).
  bf16Lora('loraLinear bf16 W, out 2048', 2048, 48, 14),
  // in = 6144: the forward's x W^T sums over K = 6144, where oneDNN runs gemm:jit instead of its brgemm too.
  bf16Lora('loraLinear bf16 W, in 6144', 24, 6144, 15),
  {
    // Three members reading one x (as q/k/v): rank 11, in/out not multiples of 16, 150 rows (three row blocks), a
    // bias on one member: the group passes of kernels/LoraLinearBf16.cc (one summed dx), or each member (fallback).
    name: 'loraLinearGroup bf16 W, three members',
    shapes: [
      [150, 70],
      [11, 70],
      [45, 11],
      [11, 70],
      [20, 11],
      [11, 70],
      [33, 11],
    ],
    f: ([x, A0, B0, A1, B1, A2, B2]) =>
      tf.concat(
        loraLinearGroup(
          x as tf.Tensor2D,
          [
            { W: W16(45 * 70, 21, [45, 70])(), A: A0 as tf.Tensor2D, B: B0 as tf.Tensor2D },
            {
              W: W16(20 * 70, 22, [20, 70])(),
              A: A1 as tf.Tensor2D,
              B: B1 as tf.Tensor2D,
              bias: tf.tensor1d(rand(20, 5)),
            },
            { W: W16(33 * 70, 23, [33, 70])(), A: A2 as tf.Tensor2D, B: B2 as tf.Tensor2D },
          ],
          0.5,
        ),
        1,
      ),
  },
  {
    name: 'crossEntropyWeighted bf16 lm_head',
    shapes: [[21, 32]],
    f: ([h]) =>
      crossEntropyWeighted(
        h as tf.Tensor2D,
        W16(300 * 32, 11, [300, 32])(),
        Int32Array.from({ length: 21 }, (_, i) => (i * 37) % 300),
        Float32Array.from({ length: 21 }, (_, i) => (i % 5 ? 1 : 0)),
        { chunkRows: 8 },
      ),
  },
  {
    // V = 17000 spans three of the native kernel's 8192-row vocabulary blocks (logits and dh = dlogits W per block).
    name: 'crossEntropyWeighted bf16 lm_head, V over three 8192-row blocks',
    shapes: [[6, 16]],
    f: ([h]) =>
      crossEntropyWeighted(
        h as tf.Tensor2D,
        W16(17000 * 16, 12, [17000, 16])(),
        Int32Array.of(0, 8191, 8192, 16383, 16384, 16999),
        Float32Array.of(1, 0.5, 1, 1, 0, 2),
        { chunkRows: 4 },
      ),
  },
];

describe('bf16 weights', () => {
  beforeAll(async () => {
    await initBackend({});
    await tf.setBackend('cpu');
  });

  it('packs bf16 two per int32 and unpacks exactly', () => {
    const v = roundBf16(rand(20, 1));
    const W = bf16Tensor(f32ToBf16(v), [2, 10]);
    expect(W.dtype).toBe('int32');
    expect(W.shape).toEqual([2, 5]);
    expect(maxdiff(weightF32(tf.backend() as never, W), v)).toBe(0);
    expect(() => bf16Tensor(new Uint16Array(6), [2, 3])).toThrow(/odd/);
    W.dispose();
  });

  it('reference matMulBf16 = float32 matmul of the bf16-rounded operands', () => {
    const x = rand(6 * 8, 2),
      w = roundBf16(rand(4 * 8, 3));
    const y = tf.tidy(() =>
      matMulBf16(tf.tensor2d(x, [6, 8]), bf16Tensor(f32ToBf16(w), [4, 8]) as tf.Tensor2D).dataSync(),
    );
    const want = tf.tidy(() =>
      tf.matMul(tf.tensor2d(roundBf16(x), [6, 8]), tf.tensor2d(w, [4, 8]), false, true).dataSync(),
    );
    expect(maxdiff(y, want)).toBeLessThan(1e-5);
  });
});

describe.skipIf(!native.ok)(`bf16 kernels native vs cpu${native.ok ? '' : ' (SKIPPED: ' + native.detail + ')'}`, () => {
  beforeAll(async () => {
    await initBackend({});
  });
  // oneDNN with bf16 products, with products widened to fp32 (Intel CPUs without AMX take these), and the fallback.
  for (const path of ['onednn-bf16', 'onednn-f32', 'fallback']) {
    for (const c of CASES) {
      it(`${c.name} (${path})`, async () => {
        const data = c.shapes.map((s, i) =>
          rand(
            s.reduce((a, b) => a * b, 1),
            7 + 13 * i,
          ),
        );
        await tf.setBackend('cpu');
        const ref = run(c.f, data, c.shapes);
        await tf.setBackend('native');
        const info = addon().bf16Info();
        if (path !== 'fallback' && !info.dnnl) return console.log(`${c.name}: oneDNN path SKIPPED (${info.error})`);
        addon().setBf16Path(path);
        try {
          const got = run(c.f, data, c.shapes);
          const d = Math.max(...ref.map((v, i) => maxdiff(v, got[i])));
          console.log(
            `${c.name} ${path}${path !== 'fallback' ? ` (${addon().bf16Info().impl})` : ''} vs cpu reference (value + grads) maxdiff=${d.toExponential(2)}`,
          );
          expect(d).toBeLessThan(1e-5 * Math.max(1, scaleOf(ref)));
        } finally {
          addon().setBf16Path('onednn');
        }
      });
    }
  }
});

describe.skipIf(!native.ok)('the clock of oneDNN products (native, bf16 W)', () => {
  // bench-step.ts splits a step into oneDNN's products and the rest by bf16Info().productSeconds.
  it('advances with each oneDNN product and not on the fallback path', async () => {
    await initBackend({});
    await tf.setBackend('native');
    if (!addon().bf16Info().dnnl) return console.log(`oneDNN SKIPPED (${addon().bf16Info().error})`);
    const product = () =>
      tf.tidy(() =>
        matMulBf16(tf.tensor2d(rand(256 * 512, 3), [256, 512]), W16(512 * 512, 4, [512, 512])(), true).dataSync(),
      );
    const clock = () => addon().bf16Info().productSeconds;
    product();
    const t0 = clock();
    product();
    const t1 = clock();
    expect(t1).toBeGreaterThan(t0);
    addon().setBf16Path('fallback');
    try {
      product();
    } finally {
      addon().setBf16Path('onednn');
    }
    expect(clock()).toBe(t1);
  });
});

describe.skipIf(!native.ok)('loraLinearGroup against loraLinear per member (native, bf16 W)', () => {
  // The group reads x once; each y_i, dA_i and dB_i is the member's loraLinear result bit for bit (same passes, same
  // order). dx sums the members inside the kernel, not by the tape's Adds: equal up to fp32 rounding.
  it('y, dA, dB bit for bit; dx within fp32 rounding', async () => {
    await initBackend({});
    await tf.setBackend('native');
    const [N, inp, r] = [150, 70, 11];
    const outs = [45, 20, 33];
    const Ws = outs.map((o, i) => W16(o * inp, 40 + i, [o, inp])());
    const rs = outs.map((o, i) => tf.tensor2d(rand(N * o, 70 + i), [N, o]));
    const params = [
      tf.tensor2d(rand(N * inp, 3), [N, inp]),
      ...outs.flatMap((o, i) => [
        tf.tensor2d(rand(r * inp, 50 + i), [r, inp]),
        tf.tensor2d(rand(o * r, 60 + i), [o, r]),
      ]),
    ] as tf.Tensor2D[];
    // [y_0 .. y_2] from x, A_0, B_0, A_1, ...: one group call, or one loraLinear per member.
    const grouped = ([x, ...ab]: tf.Tensor2D[]) =>
      loraLinearGroup(
        x,
        Ws.map((W, i) => ({ W, A: ab[2 * i], B: ab[2 * i + 1] })),
        2,
      );
    const single = ([x, ...ab]: tf.Tensor2D[]) => Ws.map((W, i) => loraLinear(x, W, ab[2 * i], ab[2 * i + 1], 2));
    const loss =
      (f: typeof single) =>
      (...p: tf.Tensor[]) =>
        tf.addN(f(p as tf.Tensor2D[]).map((y, i) => tf.sum(tf.mul(y, rs[i]))));
    const values = (ts: tf.Tensor[]) => ts.map((t) => t.dataSync().slice() as Float32Array);
    const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
    const [gy, sy] = [values(grouped(params)), values(single(params))];
    gy.forEach((v, i) => expect(same(v, sy[i])).toBe(true));
    const [gg, sg] = [values(tf.grads(loss(grouped))(params)), values(tf.grads(loss(single))(params))];
    for (let i = 1; i < gg.length; i++) expect(same(gg[i], sg[i])).toBe(true);
    const d = maxdiff(gg[0], sg[0]);
    console.log(`loraLinearGroup dx vs the tape's sum of per-member dx: maxdiff=${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-5 * Math.max(1, scaleOf([sg[0]])));
  });
});

describe.skipIf(!native.ok)('oneDNN products while the primitive cache turns over (native, bf16 W)', () => {
  // kernels/Dnnl.cc keeps up to 256 primitives (then starts over) and each thread's memory objects per primitive
  // (let go of past 512): 2 x 300 distinct row counts pass both limits. Each product against the fp32 fallback.
  it('600 shapes in a row agree with the fallback path', async () => {
    await initBackend({});
    await tf.setBackend('native');
    if (!addon().bf16Info().dnnl) return console.log(`oneDNN path SKIPPED (${addon().bf16Info().error})`);
    const [N, K] = [24, 40];
    const W = W16(N * K, 9, [N, K])();
    let worst = 0;
    try {
      for (let round = 0; round < 2; round++)
        for (let M = 1; M <= 300; M++) {
          const [a, b] = tf.tidy(() => {
            const x = tf.tensor2d(rand(M * K, M), [M, K]);
            addon().setBf16Path(round ? 'onednn-f32' : 'onednn-bf16');
            const y = matMulBf16(x, W).dataSync().slice() as Float32Array;
            addon().setBf16Path('fallback');
            return [y, matMulBf16(x, W).dataSync().slice() as Float32Array];
          });
          worst = Math.max(worst, maxdiff(a, b) / Math.max(1, scaleOf([b])));
        }
    } finally {
      addon().setBf16Path('onednn');
      W.dispose();
    }
    console.log(`600 products, oneDNN vs fallback: worst relative maxdiff=${worst.toExponential(2)}`);
    expect(addon().bf16Info().dnnl).toBe(true);
    expect(worst).toBeLessThan(1e-5);
  });
});
