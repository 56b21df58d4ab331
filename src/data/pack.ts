// Sequence packing: examples -> rows of at most batchSize tokens, best-fit decreasing.
import { UserError } from '../errors.ts';
import { mulberry32, shuffledIndices } from '../util/random.ts';
import type { PackedRow, TokenizedExample } from './types.ts';

/**
 * Open rows indexed by free space, so "the fullest row that still fits L tokens" is one O(log cap) query:
 * a segment tree over free = base..cap holding, per leaf, how many open rows have that much room. No open row has
 * less room than base = cap - (tokens that can share rows), so a huge batchSize costs no memory.
 */
class FreeSpaceIndex {
  private size = 1;
  private count: Int32Array;
  private rows: Map<number, number[]> = new Map(); // free - base -> open row ids (LIFO)
  constructor(
    capacity: number,
    private readonly base: number,
  ) {
    while (this.size < capacity - base + 1) this.size *= 2;
    this.count = new Int32Array(2 * this.size);
  }
  private bump(key: number, d: number) {
    for (let i = key + this.size; i >= 1; i >>= 1) this.count[i] += d;
  }
  add(row: number, free: number) {
    const key = free - this.base;
    const list = this.rows.get(key) ?? [];
    list.push(row);
    this.rows.set(key, list);
    this.bump(key, 1);
  }
  /** Remove and return an open row with the least free space >= need, or null. */
  takeBestFit(need: number): { row: number; free: number } | null {
    need = Math.max(0, need - this.base);
    // walk down from the root to the leftmost leaf >= need with a non-zero count
    const find = (node: number, lo: number, hi: number): number => {
      if (hi < need || this.count[node] === 0) return -1;
      if (lo === hi) return lo;
      const mid = (lo + hi) >> 1;
      const l = find(2 * node, lo, mid);
      return l !== -1 ? l : find(2 * node + 1, mid + 1, hi);
    };
    const key = find(1, 0, this.size - 1);
    if (key === -1) return null;
    const row = this.rows.get(key)!.pop()!;
    this.bump(key, -1);
    return { row, free: key + this.base };
  }
}

export interface PackOptions {
  /** Tokens per row (the managed job's batch size). */
  batchSize: number;
  /** At most this many examples per row (default: no cap). */
  batchSizeSamples?: number;
  seed: number;
}

/**
 * Best-fit decreasing packing. Examples are shuffled with `seed` (so equal lengths are ordered at
 * random but reproducibly), stably sorted longest first, and each goes to the open row with the least
 * room that still fits it; an example longer than batchSize gets a row of its own. Rows are returned in a
 * seeded random order. Example: batchSize 8, examples a (5 tokens), b (3), c (2), d (4):
 *
 *   row 0: a0 a1 a2 a3 a4 b0 b1 b2      segmentIds 0 0 0 0 0 1 1 1   positionIds 0 1 2 3 4 0 1 2
 *   row 1: d0 d1 d2 d3 c0 c1            segmentIds 0 0 0 0 1 1       positionIds 0 1 2 3 0 1
 *
 * Attention inside a row is block-diagonal and causal: a token sees only earlier tokens of its own
 * segment (row 0, x = attends):
 *
 *        a0 a1 a2 a3 a4 b0 b1 b2
 *   a0   x
 *   a1   x  x
 *   a2   x  x  x
 *   a3   x  x  x  x
 *   a4   x  x  x  x  x
 *   b0                  x
 *   b1                  x  x
 *   b2                  x  x  x
 *
 * weights[i] is the weight of predicting inputIds[i] from position i-1 of the same segment, so the first
 * token of every segment (a0, b0) has weight 0: nothing in its segment predicts it.
 */
export function packExamples(examples: TokenizedExample[], opts: PackOptions): PackedRow[] {
  const cap = opts.batchSize;
  const maxSamples = opts.batchSizeSamples ?? Infinity;
  if (!Number.isInteger(cap) || cap < 1) throw new UserError(`batchSize must be a positive integer, got ${cap}`);
  if (!(maxSamples >= 1)) throw new UserError(`batchSizeSamples must be >= 1, got ${opts.batchSizeSamples}`);
  const rand = mulberry32(opts.seed);
  const order = shuffledIndices(examples.length, rand);
  order.sort((i, j) => examples[j].inputIds.length - examples[i].inputIds.length); // stable (ES2019)

  const rows: number[][] = []; // example indices per row
  const shared = examples.reduce((n, e) => n + (e.inputIds.length < cap ? e.inputIds.length : 0), 0);
  const index = new FreeSpaceIndex(cap, Math.max(0, cap - shared));
  for (const e of order) {
    const len = examples[e].inputIds.length;
    if (len === 0) continue;
    if (len >= cap) {
      rows.push([e]); // fills (or overflows) a row by itself
      continue;
    }
    const hit = index.takeBestFit(len);
    let row: number;
    let free: number;
    if (hit) ({ row, free } = hit);
    else {
      row = rows.push([]) - 1;
      free = cap;
    }
    rows[row].push(e);
    free -= len;
    if (free > 0 && rows[row].length < maxSamples) index.add(row, free);
  }
  return shuffledIndices(rows.length, rand).map((r) => buildRow(rows[r], examples));
}

function buildRow(members: number[], examples: TokenizedExample[]): PackedRow {
  const T = members.reduce((n, e) => n + examples[e].inputIds.length, 0);
  const row: PackedRow = {
    inputIds: new Int32Array(T),
    weights: new Float32Array(T),
    positionIds: new Int32Array(T),
    segmentIds: new Int32Array(T),
    examples: members,
  };
  let t = 0;
  members.forEach((e, seg) => {
    const { inputIds, weights } = examples[e];
    for (let i = 0; i < inputIds.length; i++, t++) {
      row.inputIds[t] = inputIds[i];
      row.weights[t] = i === 0 ? 0 : weights[i];
      row.positionIds[t] = i;
      row.segmentIds[t] = seg;
    }
  });
  return row;
}
