// Seeded randomness for training. Every random choice (carve-out, data order, dropout) is derived from
// (seed, purpose, epoch, step) by hashing, never from a stream that advances, so a resumed run makes the
// same choices as an uninterrupted one without saving generator state. The generator itself (mulberry32 and a
// Fisher-Yates shuffle) is the one in src/util/random.ts.
import { mulberry32, shuffledIndices } from '../util/random.ts';

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
