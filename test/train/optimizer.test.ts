import { describe, expect, it } from 'vitest';
import {
  adamwNative,
  adamwScalars,
  adamwStep,
  adamwUpdateRef,
  clipGradNorm,
  createAdamWState,
  gradNorm,
  ADAMW_DEFAULTS,
} from '../../src/train/optimizer.ts';
import { maxdiff, rand } from '../helpers/index.ts';

const nativeAdamw = adamwNative();

describe('AdamW', () => {
  it('matches a hand-computed PyTorch AdamW reference over two steps', () => {
    // lr 0.1, wd 0.01, betas 0.9/0.999, eps 1e-8, same gradient twice.
    // Step 1: p *= 1 - 0.001; m = 0.1 g; v = 0.001 g^2; m/(1-0.9) = g; sqrt(v/(1-0.999)) = |g|
    //   => p -= 0.1 * g/|g| (up to eps): [1, -2] -> [0.999 - 0.1, -1.998 + 0.1] = [0.899, -1.898]
    // Step 2: bias-corrected moments are again g and g^2 => [0.899*0.999 - 0.1, -1.898*0.999 + 0.1]
    const params = new Map([['w', new Float32Array([1, -2])]]);
    const grads = new Map([['w', new Float32Array([0.5, -0.1])]]);
    const st = createAdamWState(params);
    const cfg = { ...ADAMW_DEFAULTS, weightDecay: 0.01 };
    adamwStep(params, grads, st, 0.1, cfg);
    const eps1 = 0.1 * (0.5 / (0.5 + 1e-8) - 1); // the eps correction, ~2e-9
    expect(params.get('w')![0]).toBeCloseTo(0.899 + eps1, 6);
    expect(params.get('w')![1]).toBeCloseTo(-1.898, 6);
    expect(st.step).toBe(1);
    expect(st.m.get('w')![0]).toBeCloseTo(0.05, 7);
    expect(st.v.get('w')![0]).toBeCloseTo(0.00025, 9);
    adamwStep(params, grads, st, 0.1, cfg);
    expect(params.get('w')![0]).toBeCloseTo(0.899 * 0.999 - 0.1, 6);
    expect(params.get('w')![1]).toBeCloseTo(-1.898 * 0.999 + 0.1, 6);
  });

  it('matches PyTorch numbers for different gradients (reference computed with torch.optim.AdamW semantics)', () => {
    // Independent float64 re-derivation of torch's update for step t with changing gradients.
    const p0 = [0.3, -0.7, 1.1];
    const gs = [
      [0.2, -0.4, 0.05],
      [-0.1, 0.3, 0.2],
      [0.05, 0.05, -0.3],
    ];
    const lr = 0.01,
      wd = 0.1,
      b1 = 0.9,
      b2 = 0.999,
      eps = 1e-8;
    const ref = [...p0],
      m = [0, 0, 0],
      v = [0, 0, 0];
    const params = new Map([['x', new Float32Array(p0)]]);
    const st = createAdamWState(params);
    gs.forEach((g, t0) => {
      const t = t0 + 1;
      for (let i = 0; i < 3; i++) {
        ref[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2;
        const mh = m[i] / (1 - b1 ** t),
          vh = v[i] / (1 - b2 ** t);
        ref[i] -= (lr * mh) / (Math.sqrt(vh) + eps);
      }
      adamwStep(params, new Map([['x', new Float32Array(g)]]), st, lr, { beta1: b1, beta2: b2, eps, weightDecay: wd });
    });
    const got = params.get('x')!;
    for (let i = 0; i < 3; i++) expect(Math.abs(got[i] - ref[i])).toBeLessThan(1e-6);
  });

  it('skips weight decay where decay(name) is false', () => {
    const params = new Map([['bias', new Float32Array([1])]]);
    const st = createAdamWState(params);
    adamwStep(
      params,
      new Map([['bias', new Float32Array([0])]]),
      st,
      0.1,
      { ...ADAMW_DEFAULTS, weightDecay: 0.5 },
      () => false,
    );
    expect(params.get('bias')![0]).toBe(1);
    const p2 = new Map([['w', new Float32Array([1])]]);
    adamwStep(p2, new Map([['w', new Float32Array([0])]]), createAdamWState(p2), 0.1, {
      ...ADAMW_DEFAULTS,
      weightDecay: 0.5,
    });
    expect(p2.get('w')![0]).toBeCloseTo(0.95, 7);
  });

  it('clips the global gradient norm like clip_grad_norm_', () => {
    const grads = new Map([
      ['a', new Float32Array([3])],
      ['b', new Float32Array([4])],
    ]);
    expect(gradNorm(grads)).toBeCloseTo(5, 6);
    expect(clipGradNorm(grads, 1)).toBeCloseTo(5, 6);
    expect(gradNorm(grads)).toBeCloseTo(1, 5);
    const small = new Map([['a', new Float32Array([0.3])]]);
    clipGradNorm(small, 1);
    expect(small.get('a')![0]).toBeCloseTo(0.3, 7);
  });

  describe.skipIf(!nativeAdamw)(
    `native AdamW (kernels/AdamW.cc)${nativeAdamw ? '' : ' (SKIPPED: addon not built)'}`,
    () => {
      it('matches the JS reference bit for bit on one update (200k elements, tiny and huge gradients, zeros)', () => {
        const n = 200_003; // above the OpenMP threshold, odd length
        const g = rand(n, 3, 1);
        g[0] = 0;
        g[1] = 1e-30;
        g[2] = -1e20;
        g[3] = 3e-8;
        const p0 = rand(n, 1, 0.5),
          m0 = rand(n, 2, 0.01),
          v0 = rand(n, 4, 1e-4).map(Math.abs);
        const s = adamwScalars({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 }, 2e-4, 7, true);
        const ref = [p0, m0, v0].map((a) => a.slice()),
          nat = [p0, m0, v0].map((a) => a.slice());
        adamwUpdateRef(ref[0], g, ref[1], ref[2], s);
        nativeAdamw!(nat[0], g, nat[1], nat[2], s);
        const d = ['p', 'm', 'v'].map((k, i) => `${k} ${maxdiff(ref[i], nat[i]).toExponential(2)}`);
        console.log(`AdamW native vs JS maxdiff: ${d.join(', ')}`);
        for (let i = 0; i < 3; i++) expect(nat[i]).toEqual(ref[i]);
        expect(maxdiff(ref[0], p0)).toBeGreaterThan(0); // the update did something
      });

      // The second set is large enough for the threaded region, with lengths that end mid-vector.
      it.each([
        [
          'one thread',
          [
            ['a', 8 * 576],
            ['b', 576 * 8],
            ['norm', 37],
          ],
        ],
        [
          'threaded',
          [
            ['a', 8 * 4099],
            ['b', 40001],
            ['norm', 37],
          ],
        ],
      ] as [string, [string, number][]][])(
        'adamwStep through the addon (one call for all tensors, %s) equals the JS loop over 20 steps, with and without decay',
        (_, shapes) => {
          const mk = () => new Map(shapes.map(([k, n], i) => [k, rand(n, 10 + i, 0.1)]));
          const pn = mk(),
            pr = mk(),
            sn = createAdamWState(pn),
            sr = createAdamWState(pr);
          const cfg = { ...ADAMW_DEFAULTS, weightDecay: 0.1 },
            decay = (k: string) => k !== 'norm';
          for (let t = 0; t < 20; t++) {
            const grads = new Map(shapes.map(([k, n], i) => [k, rand(n, 100 * t + i, 10 ** -(t % 4))]));
            const lr = 1e-3 * (1 - t / 20);
            adamwStep(pn, grads, sn, lr, cfg, decay); // native (the addon is loaded)
            // the reference, driven the same way as adamwStep
            const step = ++sr.step;
            for (const [k, p] of pr)
              adamwUpdateRef(p, grads.get(k)!, sr.m.get(k)!, sr.v.get(k)!, adamwScalars(cfg, lr, step, decay(k)));
          }
          let d = 0;
          for (const [k] of shapes)
            d = Math.max(
              d,
              maxdiff(pn.get(k)!, pr.get(k)!),
              maxdiff(sn.m.get(k)!, sr.m.get(k)!),
              maxdiff(sn.v.get(k)!, sr.v.get(k)!),
            );
          console.log(`AdamW 20 steps native vs JS maxdiff=${d.toExponential(2)}`);
          expect(d).toBe(0);
          for (const [k] of shapes) expect(pn.get(k)).toEqual(pr.get(k));
          expect(sn.step).toBe(20);
        },
      );

      it('rejects mismatched lengths instead of reading past an array', () => {
        const s = adamwScalars(ADAMW_DEFAULTS, 1e-3, 1, true);
        expect(() =>
          nativeAdamw!(new Float32Array(4), new Float32Array(3), new Float32Array(4), new Float32Array(4), s),
        ).toThrow(/lengths/);
      });

      it('adamwStep rejects a gradient of the wrong length, and the addon a moment of the wrong length', () => {
        const params = new Map([['w', new Float32Array(4)]]);
        const st = createAdamWState(params);
        expect(() => adamwStep(params, new Map([['w', new Float32Array(3)]]), st, 1e-3, ADAMW_DEFAULTS)).toThrow(
          "adamwStep: gradient of 'w' has 3 values, the parameter 4",
        );
        st.v.set('w', new Float32Array(2));
        expect(() => adamwStep(params, new Map([['w', new Float32Array(4)]]), st, 1e-3, ADAMW_DEFAULTS)).toThrow(
          /tensor 0's arrays differ in length/,
        );
      });
    },
  );
});
