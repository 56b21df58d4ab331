// The native boundary checks its buffers: every C++ entry point (kernels/*.cc) compares each buffer's length with
// the shape it is given and throws a RangeError. Each function is
// called once with buffers of the right size (no throw), then once per buffer with that buffer one element short.
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/backend/addon.ts';
import { nativeAvailability } from '../../src/backend/native_backend.ts';

const native = nativeAvailability();
const f = (n: number) => new Float32Array(n).fill(0.5);
const z = (n: number) => new Int32Array(n);

// B=1, T=4, H=2, Hkv=1, D=4 (attention); N=3, C=4 (norms); N=3, in=4, out=5, r=2 (LoRA); M=3, C=4, V=6 (CE).
const [B, T, H, Hkv, D] = [1, 4, 2, 1, 4];
const nq = B * T * H * D;
const nk = B * T * Hkv * D;
const CALLS: Record<string, () => unknown[]> = {
  batchMatMul: () => [f(2 * 3 * 4), f(4 * 5), f(2 * 3 * 5), 2, 1, 3, 5, 4, false, false, f(5)],
  adamWMany: () => [...[0, 1, 2, 3].map(() => [f(5), f(3)]), [1, 0.99], 0.9, 0.999, 1e-8, 1e-3, 0.03],
  gatherV2: () => [f(4 * 3), z(2), f(2 * 3), 4, 3],
  unsortedSegmentSum: () => [f(4 * 3), z(4), f(2 * 3), 2, 3],
  weightedCrossEntropy: () => [f(3 * 4), f(6 * 4), z(3), f(3), f(1), f(3 * 4), 3, 4, 6, 2],
  rmsNorm: () => [f(3 * 4), f(4), f(3 * 4), f(3), 3, 4, 1e-6],
  rmsNormGrad: () => [f(12), f(12), f(4), f(3), f(12), f(4), 3, 4],
  rope: () => [f(3 * 2 * 4), f(3 * 4), f(3 * 4), f(3 * 2 * 4), 3, 2, 4, false],
  swiglu: () => [f(7), f(7), f(7), 7],
  swigluGrad: () => [f(7), f(7), f(7), f(7), f(7), 7],
  geluTanhMul: () => [f(7), f(7), f(7), 7],
  geluTanhMulGrad: () => [f(7), f(7), f(7), f(7), f(7), 7],
  loraLinear: () => [f(3 * 4), f(3 * 4), f(5 * 4), f(2 * 4), f(5 * 2), f(5), f(3 * 5), f(3 * 2), 3, 4, 5, 2, 2],
  loraLinearGrad: () => [
    f(3 * 5),
    f(3 * 4),
    f(5 * 4),
    f(2 * 4),
    f(5 * 2),
    f(3 * 2),
    f(3 * 4),
    f(3 * 4),
    f(2 * 4),
    f(5 * 2),
    3,
    4,
    5,
    2,
    2,
  ],
  fusedAttention: () => [f(nq), f(nk), f(nk), z(B * T), f(nq), f(B * H * T), B, T, H, Hkv, D, 0.5],
  fusedAttentionGrad: () => [
    f(nq),
    f(nq),
    f(nk),
    f(nk),
    z(B * T),
    f(nq),
    f(B * H * T),
    f(nq),
    f(nk),
    f(nk),
    B,
    T,
    H,
    Hkv,
    D,
    0.5,
  ],
  // a [2,1,3] + b [1,4,3] -> out [2,4,3]: a's stride along the broadcast dim is 0.
  ...Object.fromEntries(
    ['add', 'sub', 'multiply', 'realDiv'].map((fn) => [
      fn,
      () => [
        f(2 * 3),
        f(4 * 3),
        f(2 * 4 * 3),
        Int32Array.from([2, 4, 3]),
        Int32Array.from([3, 0, 1]),
        Int32Array.from([0, 3, 1]),
      ],
    ]),
  ),
  transpose: () => [f(2 * 3 * 4), f(2 * 3 * 4), Int32Array.from([2, 3, 4]), Int32Array.from([2, 0, 1])],
  softmax: () => [f(3 * 5), f(3 * 5), 3, 5],
  // bf16 weights packed two per Int32 element: z(n / 2) holds n bf16 values (zeros).
  matMulBf16: () => [f(3 * 4), z((5 * 4) / 2), f(3 * 5), 3, 5, 4, true],
  loraLinearBf16: () => [
    f(3 * 4),
    f(3 * 4),
    z((5 * 4) / 2),
    f(2 * 4),
    f(5 * 2),
    f(5),
    f(3 * 5),
    f(3 * 2),
    3,
    4,
    5,
    2,
    2,
  ],
  loraLinearGradBf16: () => [
    f(3 * 5),
    f(3 * 4),
    z((5 * 4) / 2),
    f(2 * 4),
    f(5 * 2),
    f(3 * 2),
    f(3 * 4),
    f(3 * 4),
    f(2 * 4),
    f(5 * 2),
    3,
    4,
    5,
    2,
    2,
  ],
  weightedCrossEntropyBf16: () => [f(3 * 4), z((6 * 4) / 2), z(3), f(3), f(1), f(3 * 4), 3, 4, 6, 2],
  // Two members (out 5 with a bias, out 3 without) of N=3, in=4, r=2; their buffers are checked in MEMBER_CALLS.
  loraLinearGroupBf16: () => [f(3 * 4), groupMembers(false), f(3 * 2 * 2), 3, 4, 2, 2],
  loraLinearGroupGradBf16: () => [f(3 * 4), groupMembers(true), f(3 * 2 * 2), f(3 * 4), 3, 4, 2, 2],
};

/** loraLinearGroup's members: W, A, B, then bias and y (forward) or dy, dA, dB (backward). */
function groupMembers(grad: boolean): Array<Record<string, unknown>> {
  return [5, 3].map((out, i) => ({
    out,
    W: z((out * 4) / 2),
    A: f(2 * 4),
    B: f(out * 2),
    ...(grad ? { dy: f(3 * out), dA: f(2 * 4), dB: f(out * 2) } : { bias: i === 0 ? f(out) : null, y: f(3 * out) }),
  }));
}

/** Arrays that give the shape rather than being checked against it (gatherV2's and unsortedSegmentSum's ids [N], the binary kernels' and transpose's shape). */
const SHAPE_ARGS: Record<string, number[]> = {
  gatherV2: [1],
  unsortedSegmentSum: [1],
  add: [3],
  sub: [3],
  multiply: [3],
  realDiv: [3],
  transpose: [2],
};

describe.skipIf(!native.ok)('native entry points check their buffers', () => {
  const addon = loadAddon().addon as unknown as Record<string, (...a: unknown[]) => unknown>;

  it('covers every exported kernel', () => {
    const exported = Object.keys(addon).filter(
      (k) =>
        typeof addon[k] === 'function' &&
        !['info', 'setThreads', 'bf16Info', 'setBf16Path', 'setSoftmaxPath', 'keepAwake'].includes(k),
    );
    expect(exported.sort()).toEqual(Object.keys(CALLS).sort());
  });

  for (const [fn, args] of Object.entries(CALLS)) {
    it(`${fn}: a buffer one element short is a RangeError, for each buffer`, () => {
      expect(() => addon[fn](...args())).not.toThrow();
      const buffers = args().flatMap((a, i) => (ArrayBuffer.isView(a) && !SHAPE_ARGS[fn]?.includes(i) ? [i] : []));
      for (const i of buffers) {
        const a = args();
        const full = a[i] as Float32Array | Int32Array;
        if (full.length === 0) continue;
        a[i] = full.subarray(0, full.length - 1);
        expect(() => addon[fn](...a), `${fn} argument ${i}`).toThrow(RangeError);
      }
    });
  }

  it('adamWMany: any one array of a tensor one element short is a RangeError, and nothing is written', () => {
    for (let list = 0; list < 4; list++)
      for (let t = 0; t < 2; t++) {
        const a = CALLS.adamWMany() as Float32Array[][];
        a[list][t] = a[list][t].subarray(0, a[list][t].length - 1);
        const before = a.slice(0, 4).map((l) => l.map((x) => x.slice()));
        expect(() => addon.adamWMany(...a), `list ${list} tensor ${t}`).toThrow(RangeError);
        a.slice(0, 4).forEach((l, i) => l.forEach((x, j) => expect(x).toEqual(before[i][j])));
      }
    const a = CALLS.adamWMany() as unknown[][];
    a[4] = [1]; // one keep for two tensors
    expect(() => addon.adamWMany(...a)).toThrow(/the five lists differ in length/);
  });

  for (const fn of ['loraLinearGroupBf16', 'loraLinearGroupGradBf16']) {
    it(`${fn}: a member buffer one element short is a RangeError, for each buffer`, () => {
      for (const m of [0, 1])
        for (const key of Object.keys(CALLS[fn]()[1] as object)) {
          const a = CALLS[fn]();
          const member = (a[1] as Array<Record<string, unknown>>)[m];
          const full = member[key];
          if (!ArrayBuffer.isView(full)) continue;
          member[key] = (full as Float32Array).subarray(0, (full as Float32Array).length - 1);
          expect(() => addon[fn](...a), `${fn} member ${m} ${key}`).toThrow(RangeError);
        }
    });
  }

  it('says which buffer and what the shape needs', () => {
    const a = CALLS.rmsNorm();
    a[2] = f(11);
    expect(() => addon.rmsNorm(...a)).toThrow(new RangeError('rmsNorm: y has 11 elements, the shape needs 12'));
  });
});
