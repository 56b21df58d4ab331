// lorasft's one random module: the mulberry32 generator and a Fisher-Yates shuffle; Rng (uniform and Box-Muller
// normals) for weight init; and the seeds of training, each derived from (seed, purpose, epoch, step) by hashing,
// never from a stream that advances, so a resumed run makes the same choices as an uninterrupted one.

/** mulberry32: a small, fast 32-bit PRNG; returns a function giving floats uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates shuffle of 0..n-1 drawing from `rand`. */
export function shuffledIndices(n: number, rand: () => number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}

/** Seeded numbers for reproducible weight init (mulberry32 + Box-Muller). */
export class Rng {
  private spare: number | null = null;
  /** Uniform in [0, 1). */
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32((seed >>> 0) ^ 0x9e3779b9);
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const u = 1 - this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(a);
    return r * Math.cos(a);
  }
  fillNormal(n: number, std: number, mean = 0): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + std * this.normal();
    return out;
  }
  fillUniform(n: number, lo: number, hi: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(lo, hi);
    return out;
  }
}

/** 32-bit mix of a list of integers (splitmix32 finaliser over a running hash). */
export function deriveSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
    // Also mix the high bits of non-32-bit integers (e.g. step counts beyond 2^32 never happen, but seeds might).
    h = (h + Math.floor(p / 4294967296)) >>> 0;
  }
  return h >>> 0;
}

/** Purpose tags so that streams for different uses never coincide. */
export const STREAM = { carveout: 1, shuffle: 2, dropout: 3, init: 4, sample: 5 } as const;

/** Fisher-Yates permutation of 0..n-1 drawn from mulberry32(seed). */
export function permutation(n: number, seed: number): number[] {
  return shuffledIndices(n, mulberry32(seed));
}
