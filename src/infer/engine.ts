// Continuous batching over one base model: requests queue, join the running batch between decoding steps (their
// prompt prefilled through forwardLogits, as `lorasft generate`), and every step decodes all running sequences
// in one batched forward pass (batch_step.ts). The loop yields to the event loop after each step, so HTTP I/O,
// new requests and cancellations are handled between steps.
import * as tf from '@tensorflow/tfjs-core';
import { createKVCache, disposeKVCache, forwardLogits, type BaseModel, type KVCache } from '../model/model.ts';
import type { LoraWeights } from '../model/lora.ts';
import { canBatch, decodeStep, type DecodeRow } from './batch_step.ts';
import { Sequence, type Completion, type SamplingParams } from './sequence.ts';

export interface EngineOptions {
  /** Most sequences decoded together; more wait in the queue (default 32). */
  maxBatch?: number;
  /**
   * Prompt tokens prefilled per scheduling round (default 2048; at least one request is always admitted): a burst
   * of new requests joins over a few steps instead of stalling the running ones for all of its prefills.
   */
  maxPrefillTokens?: number;
}

export interface SubmitOptions {
  /** Called with each final piece of text, in order. */
  onText?: (piece: string) => void;
  /** Aborting ends the request at the next step boundary (finish reason 'cancelled'). */
  signal?: AbortSignal;
}

interface Entry {
  seq: Sequence;
  resolve: (c: Completion) => void;
  reject: (e: unknown) => void;
}

export interface EngineStats {
  steps: number;
  /** Sum over decoding steps of the batch size (tokens decoded in batched steps). */
  batchedTokens: number;
  maxBatchSeen: number;
  /** Prompts run through the model (identical prompts admitted in one round, as a request's n choices, share one). */
  prefills: number;
}

export class Engine {
  private readonly waiting: Entry[] = [];
  private readonly running: Entry[] = [];
  private loopScheduled = false;
  private idleWaiters: Array<() => void> = [];
  readonly maxBatch: number;
  /** Settable while running (a tuning knob). */
  maxPrefillTokens: number;
  readonly stats: EngineStats = { steps: 0, batchedTokens: 0, maxBatchSeen: 0, prefills: 0 };

  constructor(
    readonly base: BaseModel,
    private readonly io: { decode: (ids: number[]) => string; eos: Set<number> },
    opts: EngineOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 32;
    this.maxPrefillTokens = opts.maxPrefillTokens ?? 2048;
  }

  /** Sequences queued or decoding. */
  get inFlight(): number {
    return this.waiting.length + this.running.length;
  }

  /** True when some queued or running request uses this adapter. */
  uses(lora: LoraWeights): boolean {
    return [...this.waiting, ...this.running].some((e) => e.seq.lora === lora);
  }

  /** Ends every queued and running request (finish reason 'cancelled'); resolves once none is in flight. */
  cancelAll(): Promise<void> {
    for (const e of [...this.waiting, ...this.running]) e.seq.end('cancelled');
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  submit(
    prompt: number[],
    lora: LoraWeights | null,
    params: SamplingParams,
    opts: SubmitOptions = {},
  ): Promise<Completion> {
    return new Promise((resolve, reject) => {
      const seq = new Sequence(prompt, lora, params, createKVCache(this.base), { ...this.io, onText: opts.onText });
      const entry = { seq, resolve, reject };
      if (opts.signal?.aborted) return this.settle(entry, 'cancelled');
      if (params.maxTokens <= 0) return this.settle(entry, 'length'); // no token wanted: no prefill either
      opts.signal?.addEventListener('abort', () => seq.end('cancelled'), { once: true });
      this.waiting.push(entry);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.loopScheduled) return;
    this.loopScheduled = true;
    setImmediate(() => {
      this.loopScheduled = false;
      try {
        this.step();
      } catch (e) {
        // A failed step (out of memory, a bad adapter) fails the requests in it, never the process.
        for (const e2 of this.running.splice(0)) this.fail(e2, e);
      }
      if (this.inFlight > 0) this.schedule();
      else for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  /** One scheduling round: admit waiting requests (prefill), then one batched decoding step for all. */
  step(): void {
    this.retire();
    let prefilled = 0;
    const round = new Map<string, Prefilled>();
    while (
      this.waiting.length &&
      this.running.length < this.maxBatch &&
      (prefilled === 0 || prefilled < this.maxPrefillTokens)
    ) {
      const e = this.waiting.shift()!;
      if (e.seq.finish) {
        this.settle(e, e.seq.finish);
        continue;
      }
      try {
        if (this.prefill(e.seq, round)) prefilled += e.seq.prompt.length;
      } catch (err) {
        this.fail(e, err);
        continue;
      }
      this.running.push(e);
    }
    this.retire();
    if (this.running.length === 0) return;
    // Rows grouped by adapter: each group's LoRA delta is one matmul pair on a contiguous slice.
    const order = [...this.running].sort((a, b) => loraKey(a.seq.lora) - loraKey(b.seq.lora));
    const rows: DecodeRow[] = order.map((e) => ({ token: e.seq.next, cache: e.seq.cache, lora: e.seq.lora }));
    const logits = canBatch(this.base) ? decodeStep(this.base, rows) : this.sequential(rows);
    const V = logits.shape[1];
    const all = logits.dataSync() as Float32Array;
    logits.dispose();
    order.forEach((e, b) => e.seq.accept(all.subarray(b * V, (b + 1) * V)));
    this.stats.steps++;
    this.stats.batchedTokens += order.length;
    this.stats.maxBatchSeen = Math.max(this.stats.maxBatchSeen, order.length);
    this.retire();
  }

  /**
   * Runs the prompt through the model into the sequence's cache and picks its first token; a prompt already
   * prefilled this round with the same adapter (a request's n choices) shares that one's cache and logits instead.
   * Returns whether it ran the model.
   */
  private prefill(seq: Sequence, round: Map<string, Prefilled>): boolean {
    const key = `${loraKey(seq.lora)}:${seq.prompt.join(',')}`;
    const same = round.get(key);
    if (same) {
      shareCache(same.cache, seq.cache);
      seq.accept(same.row);
      return false;
    }
    const logits = forwardLogits(this.base, seq.lora, Int32Array.from(seq.prompt), undefined, seq.cache, {
      lastOnly: true,
    });
    const row = logits.dataSync() as Float32Array;
    logits.dispose();
    this.stats.prefills++;
    round.set(key, { cache: seq.cache, row }); // dataSync's values are the caller's to keep
    seq.accept(row);
    return true;
  }

  /** Fallback for models decodeStep does not cover: one forward pass per row. */
  private sequential(rows: DecodeRow[]): tf.Tensor2D {
    return tf.tidy(
      () =>
        tf.concat(
          rows.map((r) =>
            forwardLogits(this.base, r.lora, Int32Array.of(r.token), undefined, r.cache, { lastOnly: true }),
          ),
          0,
        ) as tf.Tensor2D,
    );
  }

  /** Settles every finished running sequence. */
  private retire(): void {
    for (let i = this.running.length - 1; i >= 0; i--) {
      const e = this.running[i];
      if (e.seq.finish) {
        this.running.splice(i, 1);
        this.settle(e, e.seq.finish);
      }
    }
  }

  private settle(e: Entry, reason: NonNullable<Sequence['finish']>): void {
    e.seq.end(reason);
    disposeKVCache(e.seq.cache);
    e.resolve(e.seq.result());
  }

  private fail(e: Entry, err: unknown): void {
    disposeKVCache(e.seq.cache);
    e.reject(err);
  }
}

/** A prompt prefilled in this scheduling round: its cache (untouched until the round's decoding step) and logits [V]. */
interface Prefilled {
  cache: KVCache;
  row: Float32Array;
}

/** dst takes src's keys and values as tensors sharing their data (caches grow by new tensors, never in place). */
function shareCache(src: KVCache, dst: KVCache): void {
  src.k.forEach((t, l) => (dst.k[l] = t && tf.keep(tf.clone(t))));
  src.v.forEach((t, l) => (dst.v[l] = t && tf.keep(tf.clone(t))));
  dst.length = src.length;
}

const loraIds = new WeakMap<LoraWeights, number>();
let nextLoraId = 1;
/** A stable number per adapter object (0 for none), to sort rows into adapter groups. */
function loraKey(l: LoraWeights | null): number {
  if (!l) return 0;
  let id = loraIds.get(l);
  if (id === undefined) loraIds.set(l, (id = nextLoraId++));
  return id;
}
