// Fused ops (src/ops): TS reference vs plain tfjs ops (forward and autodiff), finite differences of the
// kernel gradients, and native vs cpu parity (maxdiff printed), on every backend present.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.ts';
import { nativeAvailability } from '../../src/backend/native_backend.ts';
import { loadAddon } from '../../src/backend/addon.ts';
import {
  attention,
  crossEntropyWeighted,
  geluTanhMul,
  loraLinear,
  loraLinearGroup,
  rmsNorm,
  rope,
  swiglu,
} from '../../src/ops/index.ts';
import { fdCheck, maxdiff, rand, valueAndGrads } from './helpers.ts';

const native = nativeAvailability();

interface Case {
  name: string;
  shapes: number[][];
  scale?: number[]; // input value ranges
  op: (xs: tf.Tensor[]) => tf.Tensor; // the fused op
  plain: (xs: tf.Tensor[]) => tf.Tensor; // the same math in plain tfjs ops (independent reference)
  diff?: number[]; // which inputs to differentiate (default: all)
}

// Packed rows: B=2, T=6, row 0 = docs [0,0,0,1,1,2], row 1 = one doc. GQA: H=4, Hkv=2, D=4.
const B = 2,
  T = 6,
  H = 4,
  Hkv = 2,
  D = 4;
const SEG = Int32Array.from([0, 0, 0, 1, 1, 2, 5, 5, 5, 5, 5, 5]);
/** window > 0: query i also needs i - j < window (HF sliding_window_overlay). */
function plainAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, window = 0): tf.Tensor {
  const mask = new Float32Array(B * T * T);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < T; i++)
      for (let j = 0; j < T; j++) {
        if (j > i || SEG[b * T + j] !== SEG[b * T + i] || (window > 0 && i - j >= window))
          mask[(b * T + i) * T + j] = -1e30;
      }
  const kvOf = tf.tensor1d(
    Array.from({ length: H }, (_, hh) => Math.floor(hh / (H / Hkv))),
    'int32',
  );
  const rep = (x: tf.Tensor) => tf.gather(x, kvOf, 2); // HF repeat_kv: head h reads kv head h / (H/Hkv)
  const qh = tf.transpose(q, [0, 2, 1, 3]),
    kh = tf.transpose(rep(k), [0, 2, 1, 3]),
    vh = tf.transpose(rep(v), [0, 2, 1, 3]);
  const p = tf.softmax(tf.add(tf.mul(tf.matMul(qh, kh, false, true), 1 / Math.sqrt(D)), tf.tensor(mask, [B, 1, T, T])));
  return tf.transpose(tf.matMul(p, vh), [0, 2, 1, 3]);
}

const M = 5,
  C = 6,
  V = 11;
const LABELS = Int32Array.from([3, 0, 10, 7, 7]),
  WEIGHTS = Float32Array.from([1, 0.5, 0, 2, 1]);
function plainCE(h: tf.Tensor, W: tf.Tensor): tf.Tensor {
  const logits = tf.matMul(h, W, false, true);
  const nll = tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, tf.oneHot(tf.tensor1d(LABELS, 'int32'), V)), 1));
  return tf.sum(tf.mul(nll, tf.tensor1d(WEIGHTS)));
}

const N = 5,
  h = 3,
  RD = 8;
const cases: Case[] = [
  {
    name: 'attention',
    shapes: [
      [B, T, H, D],
      [B, T, Hkv, D],
      [B, T, Hkv, D],
    ],
    op: ([q, k, v]) => attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, SEG),
    plain: ([q, k, v]) => plainAttention(q, k, v),
  },
  {
    // Row 1 is one 6-token document: a window of 2 cuts it; row 0's documents are 3, 2, 1 tokens.
    name: 'attention, sliding window 2',
    shapes: [
      [B, T, H, D],
      [B, T, Hkv, D],
      [B, T, Hkv, D],
    ],
    op: ([q, k, v]) => attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, SEG, undefined, 2),
    plain: ([q, k, v]) => plainAttention(q, k, v, 2),
  },
  {
    name: 'crossEntropyWeighted',
    shapes: [
      [M, C],
      [V, C],
    ],
    diff: [0],
    op: ([hh, W]) => crossEntropyWeighted(hh as tf.Tensor2D, W as tf.Tensor2D, LABELS, WEIGHTS, { chunkRows: 2 }),
    plain: ([hh, W]) => plainCE(hh, W),
  },
  {
    name: 'rmsNorm',
    shapes: [[2, 3, 8], [8]],
    op: ([x, w]) => rmsNorm(x, w, 1e-6),
    plain: ([x, w]) => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6))), w),
  },
  {
    // bf16 models: row sums in AVX-512 lanes (100 columns: four 16-lane accumulators and a masked tail).
    name: 'rmsNorm vectorSums',
    shapes: [[6, 100], [100]],
    op: ([x, w]) => rmsNorm(x, w, 1e-6, { vectorSums: true }),
    plain: ([x, w]) => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6))), w),
  },
  {
    name: 'swiglu',
    shapes: [
      [4, 7],
      [4, 7],
    ],
    scale: [4, 1],
    op: ([g, u]) => swiglu(g, u),
    plain: ([g, u]) => tf.mul(tf.mul(g, tf.sigmoid(g)), u),
  },
  {
    // bf16 models: the native kernel's AVX-512 vector exp (37 columns: a masked tail of every 16-lane vector).
    name: 'swiglu fastExp',
    shapes: [
      [8, 37],
      [8, 37],
    ],
    scale: [4, 1],
    op: ([g, u]) => swiglu(g, u, { fastExp: true }),
    plain: ([g, u]) => tf.mul(tf.mul(g, tf.sigmoid(g)), u),
  },
  {
    name: 'geluTanhMul',
    shapes: [
      [4, 7],
      [4, 7],
    ],
    scale: [4, 1],
    op: ([g, u]) => geluTanhMul(g, u),
    // gelu_tanh(g) * u = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) * u
    plain: ([g, u]) =>
      tf.mul(
        tf.mul(
          tf.mul(g, 0.5),
          tf.add(tf.tanh(tf.mul(tf.add(g, tf.mul(tf.pow(g, 3), 0.044715)), Math.sqrt(2 / Math.PI))), 1),
        ),
        u,
      ),
  },
  {
    name: 'rope',
    shapes: [
      [N, h, RD],
      [N, RD],
      [N, RD],
    ],
    diff: [0],
    op: ([x, c, s]) => rope(x as tf.Tensor3D, c as tf.Tensor2D, s as tf.Tensor2D),
    plain: ([x, c, s]) => {
      const [x1, x2] = tf.split(x, 2, 2);
      return tf.add(tf.mul(x, tf.expandDims(c, 1)), tf.mul(tf.concat([tf.neg(x2), x1], 2), tf.expandDims(s, 1)));
    },
  },
  {
    name: 'loraLinear',
    shapes: [[5, 6], [7, 6], [2, 6], [7, 2], [7]],
    diff: [0, 2, 3],
    op: ([x, W, A, Bm, b]) =>
      loraLinear(x as tf.Tensor2D, W as tf.Tensor2D, A as tf.Tensor2D, Bm as tf.Tensor2D, 1.5, {
        bias: b as tf.Tensor1D,
      }),
    plain: ([x, W, A, Bm, b]) =>
      tf.add(
        tf.add(tf.matMul(x, W, false, true), b),
        tf.matMul(tf.mul(tf.matMul(x, A, false, true), 1.5), Bm, false, true),
      ),
  },
  {
    // Two members reading one x (the second without bias); outputs side by side.
    name: 'loraLinearGroup',
    shapes: [[5, 6], [7, 6], [2, 6], [7, 2], [3, 6], [2, 6], [3, 2], [7]],
    diff: [0, 2, 3, 5, 6],
    op: ([x, W0, A0, B0, W1, A1, B1, b]) =>
      tf.concat(
        loraLinearGroup(
          x as tf.Tensor2D,
          [
            { W: W0 as tf.Tensor2D, A: A0 as tf.Tensor2D, B: B0 as tf.Tensor2D, bias: b as tf.Tensor1D },
            { W: W1 as tf.Tensor2D, A: A1 as tf.Tensor2D, B: B1 as tf.Tensor2D },
          ],
          1.5,
        ),
        1,
      ),
    plain: ([x, W0, A0, B0, W1, A1, B1, b]) => {
      const lin = (W: tf.Tensor, A: tf.Tensor, Bm: tf.Tensor) =>
        tf.add(tf.matMul(x, W, false, true), tf.matMul(tf.mul(tf.matMul(x, A, false, true), 1.5), Bm, false, true));
      return tf.concat([tf.add(lin(W0, A0, B0), b), lin(W1, A1, B1)], 1);
    },
  },
  {
    name: 'loraLinear with dropout input',
    shapes: [
      [5, 6],
      [5, 6],
      [7, 6],
      [2, 6],
      [7, 2],
    ],
    op: ([x, xd, W, A, Bm]) =>
      loraLinear(x as tf.Tensor2D, W as tf.Tensor2D, A as tf.Tensor2D, Bm as tf.Tensor2D, 0.5, {
        xLora: xd as tf.Tensor2D,
      }),
    plain: ([x, xd, W, A, Bm]) =>
      tf.add(tf.matMul(x, W, false, true), tf.matMul(tf.mul(tf.matMul(xd, A, false, true), 0.5), Bm, false, true)),
    diff: [0, 1, 3, 4],
  },
];

function inputs(c: Case): Float32Array[] {
  return c.shapes.map((s, i) =>
    rand(
      s.reduce((a, b) => a * b, 1),
      7 + 13 * i,
      c.scale?.[i] ?? 1,
    ),
  );
}

/** The op restricted to its differentiable inputs (others fixed to their data). */
function restricted(c: Case, f: (xs: tf.Tensor[]) => tf.Tensor, data: Float32Array[]) {
  const diff = c.diff ?? c.shapes.map((_, i) => i);
  const fixed = (xs: tf.Tensor[]) =>
    c.shapes.map((s, i) => (diff.includes(i) ? xs[diff.indexOf(i)] : tf.tensor(data[i], s)));
  return {
    f: (xs: tf.Tensor[]) => f(fixed(xs)),
    shapes: diff.map((i) => c.shapes[i]),
    data: diff.map((i) => data[i]),
  };
}

function run(c: Case, f: (xs: tf.Tensor[]) => tf.Tensor): Float32Array[] {
  const data = inputs(c);
  const r = restricted(c, f, data);
  const outShape = tf.tidy(() => f(c.shapes.map((s, i) => tf.tensor(data[i], s))).shape);
  const weights = rand(
    outShape.reduce((a, b) => a * b, 1),
    5,
  );
  return valueAndGrads(r.f, () => r.data.map((d, i) => tf.tensor(d, r.shapes[i])), weights);
}

describe('fused ops', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  for (const c of cases) {
    it(`${c.name}: reference kernel = plain tfjs ops (forward and autodiff) on cpu`, async () => {
      await tf.setBackend('cpu');
      const [a, b] = [run(c, c.op), run(c, c.plain)];
      const d = Math.max(...a.map((x, i) => maxdiff(x, b[i])));
      console.log(`${c.name} ref vs plain tfjs (value + grads) maxdiff=${d.toExponential(2)}`);
      expect(d).toBeLessThan(2e-5);
    });

    it(`${c.name}: kernel gradient matches finite differences`, async () => {
      await tf.setBackend('cpu');
      const data = inputs(c);
      const r = restricted(c, c.op, data);
      const outShape = tf.tidy(() => c.op(c.shapes.map((s, i) => tf.tensor(data[i], s))).shape);
      const err = fdCheck(
        r.f,
        r.shapes,
        r.data,
        rand(
          outShape.reduce((a, b) => a * b, 1),
          5,
        ),
      );
      console.log(`${c.name} finite differences rel err=${err.toExponential(2)}`);
      expect(err).toBeLessThan(5e-3);
    });

    it.skipIf(!native.ok)(
      `${c.name}: native = cpu reference (value + grads)${native.ok ? '' : ' SKIPPED: ' + native.detail}`,
      async () => {
        await initBackend({});
        await tf.setBackend('cpu');
        const a = run(c, c.op);
        await tf.setBackend('native');
        const b = run(c, c.op);
        const d = Math.max(...a.map((x, i) => maxdiff(x, b[i])));
        console.log(`${c.name} native vs cpu maxdiff=${d.toExponential(2)}`);
        expect(d).toBeLessThan(1e-5);
      },
    );
  }

  it('attention rejects decreasing segment ids; cross-entropy rejects labels outside [0, V)', () => {
    const q = tf.zeros([1, 3, 2, 2]) as tf.Tensor4D,
      k = tf.zeros([1, 3, 1, 2]) as tf.Tensor4D;
    expect(() => attention(q, k, k, Int32Array.from([0, 1, 0]))).toThrow(/must not decrease/);
    expect(() =>
      crossEntropyWeighted(tf.zeros([1, 2]), tf.zeros([3, 2]), Int32Array.of(3), Float32Array.of(1)),
    ).toThrow(/outside \[0, 3\)/);
  });
});

describe.skipIf(!native.ok)('fused ops at larger shapes, native vs cpu', () => {
  beforeAll(async () => {
    await initBackend({});
  });

  async function both(f: () => tf.Tensor[]): Promise<number> {
    const out: Float32Array[][] = [];
    for (const b of ['cpu', 'native']) {
      await tf.setBackend(b);
      out.push(tf.tidy(() => f().map((t) => t.dataSync().slice() as Float32Array)));
    }
    return Math.max(...out[0].map((x, i) => maxdiff(x, out[1][i])));
  }

  it('attention B=2 T=64 H=6 Hkv=2 D=16, segments of 40/24 and 64 tokens', async () => {
    const seg = Int32Array.from({ length: 128 }, (_, i) => (i < 40 ? 0 : i < 64 ? 1 : 2));
    const [q, k, v, r] = [
      [2, 64, 6, 16],
      [2, 64, 2, 16],
      [2, 64, 2, 16],
      [2, 64, 6, 16],
    ].map((s, i) =>
      rand(
        s.reduce((a, b) => a * b, 1),
        31 + i,
      ),
    );
    const d = await both(() => {
      const t = [
        tf.tensor(q, [2, 64, 6, 16]),
        tf.tensor(k, [2, 64, 2, 16]),
        tf.tensor(v, [2, 64, 2, 16]),
      ] as tf.Tensor4D[];
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(
          tf.mul(attention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, seg), tf.tensor(r, [2, 64, 6, 16])),
        );
      return [attention(t[0], t[1], t[2], seg), ...tf.grads(f)(t)];
    });
    console.log(`attention 2x64x6x16 native vs cpu (value + grads) maxdiff=${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-5);
  });

  it('attention B=1 T=300 H=4 Hkv=1 D=8, a 260-token segment spans three 128-query blocks', async () => {
    const seg = Int32Array.from({ length: 300 }, (_, i) => (i < 260 ? 0 : 1));
    const sh: number[][] = [
      [1, 300, 4, 8],
      [1, 300, 1, 8],
      [1, 300, 1, 8],
    ];
    const [q, k, v, r] = [...sh, sh[0]].map((s, i) =>
      rand(
        s.reduce((a, b) => a * b, 1),
        41 + i,
      ),
    );
    const d = await both(() => {
      const mk = (x: Float32Array, s: number[]): tf.Tensor => tf.tensor(x, s);
      const t = [q, k, v].map((x, i) => mk(x, sh[i]) as tf.Tensor4D);
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(attention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, seg), tf.tensor(r, sh[0])));
      return [attention(t[0], t[1], t[2], seg), ...tf.grads(f)(t)];
    });
    console.log(`attention 1x300x4x8 native vs cpu (value + grads) maxdiff=${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-5);
  });

  it.each([[5], [100], [150], [260]])(
    'attention B=1 T=300 H=4 Hkv=2 D=8, sliding window %i inside a 260-token segment (block skipping from both ends)',
    async (W) => {
      const seg = Int32Array.from({ length: 300 }, (_, i) => (i < 260 ? 0 : 1));
      const sh: number[][] = [
        [1, 300, 4, 8],
        [1, 300, 2, 8],
        [1, 300, 2, 8],
      ];
      const [q, k, v, r] = [...sh, sh[0]].map((s, i) =>
        rand(
          s.reduce((a, b) => a * b, 1),
          51 + i,
        ),
      );
      const d = await both(() => {
        const t = [q, k, v].map((x, i) => tf.tensor(x, sh[i]) as unknown as tf.Tensor4D);
        const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          tf.sum(
            tf.mul(attention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, seg, 0.3, W), tf.tensor(r, sh[0])),
          );
        return [attention(t[0], t[1], t[2], seg, 0.3, W), ...tf.grads(f)(t)];
      });
      console.log(`attention 1x300x4x8 window ${W} native vs cpu (value + grads) maxdiff=${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-5);
    },
  );

  it('swiglu fastExp takes the vector exp on native: within 1e-6 of the exact exp, not equal to it', async () => {
    await tf.setBackend('native');
    const [g, u] = [rand(4096, 71, 8), rand(4096, 72)].map((d) => tf.tensor2d(d, [64, 64]));
    const f = (fastExp: boolean) => {
      const r = valueAndGrads(
        (xs) => swiglu(xs[0], xs[1], { fastExp }),
        () => [g.clone(), u.clone()],
        rand(4096, 73),
      );
      return r;
    };
    const [a, b] = [f(true), f(false)];
    const d = Math.max(...a.map((x, i) => maxdiff(x, b[i])));
    console.log(`swiglu fastExp vs exact exp on native (value + grads) maxdiff=${d.toExponential(2)}`);
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(1e-5);
    tf.dispose([g, u]);
  });

  // bf16 products (kernels/FusedAttentionBf16.cc, oneDNN) vs the reference rounding at the same points: both round
  // q, k, v, P, dO and dS to bf16; sums differ in order (fp32 vs float64), so a P or dS value near a bf16 rounding
  // boundary may round the other way (one bf16 step, 2^-8 relative): measured 1.2e-4, tolerance 1e-3.
  it.each([
    ['2x64, H=6 Hkv=2 D=16, segments 40/24/64', 2, 64, 6, 2, 16, 0],
    ['1x300, H=4 Hkv=2 D=8, 260-token segment', 1, 300, 4, 2, 8, 0],
    ['1x300, H=4 Hkv=2 D=8, window 150', 1, 300, 4, 2, 8, 150],
  ])('attention with bf16 products, %s: native vs cpu', async (_, B, T, H, Hkv, D, W) => {
    const seg = Int32Array.from({ length: B * T }, (_, i) =>
      B === 2 ? (i < 40 ? 0 : i < 64 ? 1 : 2) : i < 260 ? 0 : 1,
    );
    const sh = [
      [B, T, H, D],
      [B, T, Hkv, D],
      [B, T, Hkv, D],
    ];
    const [q, k, v, r] = [...sh, sh[0]].map((s, i) => rand(s[0] * s[1] * s[2] * s[3], 61 + i));
    const run = (bf16: boolean) => {
      const t = [q, k, v].map((x, i) => tf.tensor(x, sh[i]) as unknown as tf.Tensor4D);
      const att = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        attention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, seg, 0.3, W, bf16);
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(att(a, b, c), tf.tensor(r, sh[0])));
      return [att(t[0], t[1], t[2]), ...tf.grads(f)(t)];
    };
    const d = await both(() => run(true));
    await tf.setBackend('native');
    const vsFp32 = tf.tidy(() => {
      const [a, b] = [run(true), run(false)];
      return Math.max(...a.map((x, i) => maxdiff(x.dataSync() as Float32Array, b[i].dataSync() as Float32Array)));
    });
    console.log(
      `attention bf16 ${_} native vs cpu maxdiff=${d.toExponential(2)}; bf16 vs fp32 ${vsFp32.toExponential(2)}`,
    );
    expect(d).toBeLessThan(1e-3);
    expect(vsFp32).toBeGreaterThan(d); // the bf16 rounding is really applied
  });

  type Rope = { cos: tf.Tensor2D; sin: tf.Tensor2D };
  /** [backend, in-kernel, composed] values and q/k/v gradients of sum(r * att(...)) on each backend, for q [B,T,H,D],
   *  k/v [B,T,Hkv,D], segments seg and RoPE tables made here. */
  async function inKernelVsComposed(
    [B, T, H, Hkv, D]: number[],
    seed: number,
    att: (inKernel: boolean, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, rope: Rope) => tf.Tensor,
  ): Promise<[string, Float32Array[], Float32Array[]][]> {
    const sh = [
      [B, T, H, D],
      [B, T, Hkv, D],
      [B, T, Hkv, D],
    ];
    const [q, k, v, r] = [...sh, sh[0]].map((s, i) => rand(s[0] * s[1] * s[2] * s[3], seed + i));
    const ang = Float32Array.from({ length: B * T * D }, (_, i) => (Math.floor(i / D) % T) * 0.37 ** (i % (D / 2)));
    const out: [string, Float32Array[], Float32Array[]][] = [];
    for (const backend of native.ok ? ['cpu', 'native'] : ['cpu']) {
      await tf.setBackend(backend);
      const [fused, plain] = [true, false].map((inKernel) =>
        tf.tidy(() => {
          const rope = {
            cos: tf.tensor2d(ang.map(Math.cos), [B * T, D]),
            sin: tf.tensor2d(ang.map(Math.sin), [B * T, D]),
          };
          const f4 = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
            att(inKernel, a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, rope);
          const t = [q, k, v].map((x, i) => tf.tensor(x, sh[i]));
          const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f4(a, b, c), tf.tensor(r, sh[0])));
          return [f4(t[0], t[1], t[2]), ...tf.grads(f)(t)].map((x) => x.dataSync() as Float32Array);
        }),
      );
      out.push([backend, fused, plain]);
    }
    return out;
  }

  /** The two forms agree bit for bit, and dq is not all zeros. */
  function expectSameBits(what: string, runs: [string, Float32Array[], Float32Array[]][]) {
    for (const [backend, fused, plain] of runs) {
      const d = Math.max(...fused.map((x, i) => maxdiff(x, plain[i])));
      console.log(`${what}, ${backend}: maxdiff=${d}`);
      expect(d).toBe(0);
      expect(maxdiff(fused[1], new Float32Array(fused[1].length))).toBeGreaterThan(0);
    }
  }

  // FusedAttentionRope rotates q and k inside the kernel (bf16: as it packs them) with the Rope op's arithmetic, so
  // value and gradients equal rope -> attention exactly, on each backend, in fp32 and bf16, with segments and windows.
  it.each([
    [false, 0],
    [true, 0],
    [true, 20],
  ])('attention with rope tables (bf16 %s, window %i) equals rope then attention, bit for bit', async (bf16, W) => {
    const dims = [2, 64, 6, 2, 16];
    const [B, T, H, Hkv, D] = dims;
    const seg = Int32Array.from({ length: B * T }, (_, i) => (i < 40 ? 0 : i < 64 ? 1 : 2));
    const runs = await inKernelVsComposed(dims, 71, (inKernel, q, k, v, { cos, sin }) => {
      if (inKernel) return attention(q, k, v, seg, 0.3, W, bf16, { cos, sin });
      const rot = (x: tf.Tensor4D, h: number) =>
        tf.reshape(rope(tf.reshape(x, [B * T, h, D]), cos, sin), [B, T, h, D]) as tf.Tensor4D;
      return attention(rot(q, H), rot(k, Hkv), v, seg, 0.3, W, bf16);
    });
    expectSameBits(`attention rope in kernel vs rope op, bf16 ${bf16} window ${W}`, runs);
  });

  // FusedAttentionNormRope normalizes q and k (Qwen3's q_norm, k_norm) inside the kernel with the RmsNorm kernel's
  // arithmetic (vectorSums when bf16): value and gradients of q, k, v equal rmsNorm -> attention with RoPE exactly.
  it.each([
    [false, 0],
    [true, 0],
    [true, 20],
  ])(
    'attention with q/k norm weights (bf16 %s, window %i) equals rmsNorm then attention, bit for bit',
    async (bf16, W) => {
      const dims = [1, 80, 4, 2, 32];
      const D = dims[4];
      const seg = Int32Array.from({ length: 80 }, (_, i) => (i < 50 ? 0 : 1));
      const [qw, kw] = [0, 1].map((i) => rand(D, 181 + i).map((x) => 1 + x));
      const runs = await inKernelVsComposed(dims, 171, (inKernel, q, k, v, tables) => {
        const [wq, wk] = [tf.tensor1d(qw), tf.tensor1d(kw)];
        if (inKernel) return attention(q, k, v, seg, 0.3, W, bf16, tables, { q: wq, k: wk, eps: 1e-6 });
        const norm = (x: tf.Tensor4D, w: tf.Tensor) => rmsNorm(x, w, 1e-6, { vectorSums: bf16 }) as tf.Tensor4D;
        return attention(norm(q, wq), norm(k, wk), v, seg, 0.3, W, bf16, tables);
      });
      expectSameBits(`attention q/k norm in kernel vs rmsNorm op, bf16 ${bf16} window ${W}`, runs);
    },
  );

  it('attention rejects q/k norm weights without RoPE tables or of the wrong length', () => {
    const q = tf.zeros([1, 4, 2, 8]) as tf.Tensor4D,
      k = tf.zeros([1, 4, 1, 8]) as tf.Tensor4D;
    const cs = { cos: tf.zeros([4, 8]) as tf.Tensor2D, sin: tf.zeros([4, 8]) as tf.Tensor2D };
    const norm = (n: number) => ({ q: tf.ones([n]), k: tf.ones([8]), eps: 1e-6 });
    expect(() => attention(q, k, k, new Int32Array(4), undefined, 0, false, undefined, norm(8))).toThrow(
      'attention: norm needs rope and weights [D] = [8], got q 8, k 8 without rope',
    );
    expect(() => attention(q, k, k, new Int32Array(4), undefined, 0, false, cs, norm(7))).toThrow(/got q 7, k 8$/);
  });

  // The addon's own fp32 path with the norm arguments (where a bf16 call's oneDNN fails part-way, or bf16 is off) and
  // its bf16 kernel: normalizing with its rmsNorm first (vectorSums = bf16) gives the same bits, forward and backward.
  it.skipIf(!native.ok)(
    'the addon folds the q/k norm on its fp32 and bf16 paths with the same bits as rmsNorm first',
    () => {
      const addon = loadAddon().addon!;
      const [B, T, H, Hkv, D] = [1, 150, 4, 2, 64];
      const seg = Int32Array.from({ length: B * T }, (_, i) => (i < 130 ? 0 : 1));
      const [q, dO] = [0, 1].map((i) => rand(B * T * H * D, 191 + i));
      const [k, v] = [2, 3].map((i) => rand(B * T * Hkv * D, 191 + i));
      const [cos, sin] = [4, 5].map((i) => rand(B * T * D, 191 + i));
      const [qw, kw] = [6, 7].map((i) => rand(D, 191 + i).map((x) => 1 + x));
      const bits = (xs: Float32Array[]) => xs.map((x) => Buffer.from(x.buffer).toString('base64')).join();
      for (const bf16 of [false, true]) {
        const run = (fold: boolean) => {
          const rq = new Float32Array(B * T * H),
            rk = new Float32Array(B * T * Hkv);
          const [qn, kn] = [q.slice(), k.slice()];
          if (!fold) {
            addon.rmsNorm(q, qw, qn, rq, B * T * H, D, 1e-6, bf16);
            addon.rmsNorm(k, kw, kn, rk, B * T * Hkv, D, 1e-6, bf16);
          }
          const tail = fold ? [cos, sin, qw, kw, 1e-6] : [cos, sin];
          const o = new Float32Array(q.length),
            lse = new Float32Array(B * H * T);
          addon.fusedAttention(qn, kn, v, seg, o, lse, B, T, H, Hkv, D, 0.125, 0, bf16, ...(tail as [Float32Array]));
          const g = [q, k, v].map((x) => new Float32Array(x.length));
          addon.fusedAttentionGrad(
            dO,
            qn,
            kn,
            v,
            seg,
            o,
            lse,
            g[0],
            g[1],
            g[2],
            B,
            T,
            H,
            Hkv,
            D,
            0.125,
            0,
            bf16,
            ...(tail as [Float32Array]),
          );
          if (!fold)
            for (const [i, x, w, rs, n] of [
              [0, q, qw, rq, B * T * H],
              [1, k, kw, rk, B * T * Hkv],
            ] as const) {
              const dx = new Float32Array(x.length);
              addon.rmsNormGrad(g[i], x, w, rs, dx, new Float32Array(D), n, D, bf16);
              g[i] = dx;
            }
          return bits([o, lse, ...g]);
        };
        expect(run(true), `bf16 ${bf16}`).toBe(run(false));
      }
    },
  );

  // fp32 backward: each thread sums its heads' dK/dV in a partial; which thread runs which head must not depend on
  // timing, or the partials' sums round differently from call to call (it did with dynamic scheduling).
  it.skipIf(!native.ok)('attention gradients on native are the same bits on every call (2 threads)', async () => {
    const addon = loadAddon().addon!;
    const threads = addon.info().threads;
    addon.setThreads(2);
    try {
      const [B, T, H, Hkv, D] = [2, 64, 6, 2, 16];
      const seg = Int32Array.from({ length: B * T }, (_, i) => (i < 40 ? 0 : i < 64 ? 1 : 2));
      const [q, dO] = [0, 1].map((i) => rand(B * T * H * D, 81 + i));
      const [k, v] = [2, 3].map((i) => rand(B * T * Hkv * D, 81 + i));
      const o = new Float32Array(q.length),
        lse = new Float32Array(B * H * T);
      addon.fusedAttention(q, k, v, seg, o, lse, B, T, H, Hkv, D, 0.3, 0, false);
      const seen = new Set<string>();
      for (let i = 0; i < 60; i++) {
        const dq = new Float32Array(q.length),
          dk = new Float32Array(k.length),
          dv = new Float32Array(v.length);
        addon.fusedAttentionGrad(dO, q, k, v, seg, o, lse, dq, dk, dv, B, T, H, Hkv, D, 0.3, 0, false);
        seen.add([dq, dk, dv].map((x) => Buffer.from(x.buffer).toString('base64')).join());
      }
      expect(seen.size).toBe(1);
    } finally {
      addon.setThreads(threads);
    }
  });

  // The addon writes dq, dk, dv whole (the kernel hands it pooled buffers with old contents): NaN-filled outputs
  // give the same bits as zeroed ones, on the fp32 and bf16 paths, with and without RoPE tables.
  it.skipIf(!native.ok)('attention gradients on native do not depend on what the output buffers held', () => {
    const addon = loadAddon().addon!;
    const [B, T, H, Hkv, D] = [1, 48, 4, 2, 16];
    const seg = Int32Array.from({ length: B * T }, (_, i) => (i < 30 ? 0 : 1));
    const [q, dO] = [0, 1].map((i) => rand(B * T * H * D, 91 + i));
    const [k, v] = [2, 3].map((i) => rand(B * T * Hkv * D, 91 + i));
    const cos = rand(B * T * D, 95),
      sin = rand(B * T * D, 96);
    for (const bf16 of [false, true])
      for (const rope of [[], [cos, sin]]) {
        const o = new Float32Array(q.length),
          lse = new Float32Array(B * H * T);
        addon.fusedAttention(q, k, v, seg, o, lse, B, T, H, Hkv, D, 0.3, 0, bf16, ...rope);
        const run = (fill: number) => {
          const out = [q, k, v].map((x) => new Float32Array(x.length).fill(fill));
          addon.fusedAttentionGrad(
            dO,
            q,
            k,
            v,
            seg,
            o,
            lse,
            out[0],
            out[1],
            out[2],
            B,
            T,
            H,
            Hkv,
            D,
            0.3,
            0,
            bf16,
            ...rope,
          );
          return out.map((x) => Buffer.from(x.buffer).toString('base64')).join();
        };
        expect(run(NaN), `bf16 ${bf16}, rope ${rope.length > 0}`).toBe(run(0));
      }
  });

  it('attention: a window shorter than the document changes the output; a window as long as it does not', async () => {
    await tf.setBackend(native.ok ? 'native' : 'cpu');
    const seg = new Int32Array(40);
    const [q, k, v] = [
      [1, 40, 2, 8],
      [1, 40, 1, 8],
      [1, 40, 1, 8],
    ].map(
      (s, i) =>
        tf.tensor(
          rand(
            s.reduce((a, b) => a * b, 1),
            61 + i,
          ),
          s,
        ) as unknown as tf.Tensor4D,
    );
    const full = attention(q, k, v, seg).dataSync();
    expect(maxdiff(attention(q, k, v, seg, undefined, 40).dataSync() as Float32Array, full as Float32Array)).toBe(0);
    expect(
      maxdiff(attention(q, k, v, seg, undefined, 8).dataSync() as Float32Array, full as Float32Array),
    ).toBeGreaterThan(1e-3);
    expect(() => attention(q, k, v, seg, undefined, -1)).toThrow(/window -1 must be an integer >= 0/);
  });

  it('crossEntropyWeighted M=40 C=32 V=300, chunks of 16 rows', async () => {
    const hd = rand(40 * 32, 3),
      Wd = rand(300 * 32, 4);
    const labels = Int32Array.from({ length: 40 }, (_, i) => (i * 37) % 300),
      w = rand(40, 5).map(Math.abs);
    const d = await both(() => {
      const hh = tf.tensor2d(hd, [40, 32]),
        W = tf.tensor2d(Wd, [300, 32]);
      const f = (x: tf.Tensor) => crossEntropyWeighted(x as tf.Tensor2D, W, labels, w, { chunkRows: 16 });
      return [f(hh), tf.grad(f)(hh)];
    });
    console.log(`crossEntropyWeighted 40x32x300 native vs cpu (value + grad) maxdiff=${d.toExponential(2)}`);
    expect(d).toBeLessThan(2e-5);
  });

  // The native fp32 softmax runs in 16 lanes with libm's expf replicated: the same bits as its scalar loop, also for
  // logits far below the max (libm's underflow windows), masked rows, +-0 and a vocabulary tail (V = 300).
  it.skipIf(!native.ok)("crossEntropyWeighted on native: the vector softmax gives the scalar loop's bits", async () => {
    await tf.setBackend('native');
    const addon = loadAddon().addon!;
    const M = 24,
      C = 16,
      V = 300;
    const hd = rand(M * C, 9).map((x, i) => x * (1 + (Math.floor(i / C) % 6) * 12)); // rows of growing spread
    hd.fill(0, 0, C); // row 0: every logit 0
    const Wd = rand(V * C, 10);
    Wd.fill(-0, 0, C);
    const labels = Int32Array.from({ length: M }, (_, i) => (i * 41) % V),
      w = Float32Array.from({ length: M }, (_, i) => (i % 5 === 3 ? 0 : 1 + (i % 3)));
    const run = (path: 'vector' | 'scalar') => {
      const vector = addon.setSoftmaxPath(path);
      try {
        return tf.tidy(() => {
          const hh = tf.tensor2d(hd, [M, C]),
            W = tf.tensor2d(Wd, [V, C]);
          const f = (x: tf.Tensor) => crossEntropyWeighted(x as tf.Tensor2D, W, labels, w, { chunkRows: 10 });
          return { vector, loss: f(hh).dataSync()[0], dh: tf.grad(f)(hh).dataSync() as Float32Array };
        });
      } finally {
        addon.setSoftmaxPath('vector');
      }
    };
    const a = run('vector'),
      b = run('scalar');
    console.log(`lm_head softmax: vector path ${a.vector ? 'in use' : 'not available here (scalar both times)'}`);
    expect(a.loss).toBe(b.loss);
    expect(Buffer.from(a.dh.buffer).equals(Buffer.from(b.dh.buffer))).toBe(true);
    expect(Number.isFinite(a.loss)).toBe(true);
  });

  it('crossEntropyWeighted withGrad false (evaluation): the same loss on each backend, no dh, no gradient', async () => {
    const hd = rand(40 * 32, 6),
      Wd = rand(300 * 32, 7);
    const labels = Int32Array.from({ length: 40 }, (_, i) => (i * 13) % 300),
      w = rand(40, 8).map(Math.abs);
    for (const b of ['cpu', 'native']) {
      await tf.setBackend(b);
      tf.tidy(() => {
        const hh = tf.tensor2d(hd, [40, 32]),
          W = tf.tensor2d(Wd, [300, 32]);
        const train = crossEntropyWeighted(hh, W, labels, w, { chunkRows: 16 }).dataSync()[0];
        const evalOnly = crossEntropyWeighted(hh, W, labels, w, { chunkRows: 16, withGrad: false }).dataSync()[0];
        expect(evalOnly, b).toBe(train);
        const f = (x: tf.Tensor) => crossEntropyWeighted(x as tf.Tensor2D, W, labels, w, { withGrad: false });
        expect(() => tf.grad(f)(hh), b).toThrow(/withGrad false/);
      });
    }
  });
});
