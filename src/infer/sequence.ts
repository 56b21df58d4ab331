// One request in flight on a deployment: its KV cache, its sampler, and its text so far. Text is released to the
// caller only when it is final: complete characters (a multi-byte character may span tokens) and never a piece
// that could still become the start of a stop string.
import type { KVCache } from '../model/model.ts';
import type { LoraWeights } from '../model/lora.ts';
import { pickToken } from './generate.ts';
import { deriveSeed, mulberry32, STREAM } from '../util/random.ts';

export interface SamplingParams {
  /** Most new tokens (the request's max_tokens, capped by the context). */
  maxTokens: number;
  /** 0: greedy. */
  temperature: number;
  topP: number;
  /** Generation ends before the first occurrence of any of these; the stop string is not returned. */
  stop: string[];
  seed: number;
}

/**
 * The seed of choice k of a request sampled with `seed` (OpenAI's `n`): choice 0 keeps the request's seed (so n = 1
 * samples as before), the others get seeds hashed from (seed, k), so the n choices differ and are reproducible.
 */
export function choiceSeed(seed: number, k: number): number {
  return k === 0 ? seed : deriveSeed(seed, STREAM.sample, k);
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface Completion {
  text: string;
  ids: number[];
  promptTokens: number;
  completionTokens: number;
  finishReason: FinishReason;
  /** Seconds from submit to the first token, and to the end. */
  firstTokenS: number;
  totalS: number;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
export function heldBack(text: string, stop: string[]): number {
  let hold = 0;
  for (const s of stop) {
    for (let n = Math.min(s.length - 1, text.length); n > hold; n--) {
      if (text.endsWith(s.slice(0, n))) {
        hold = n;
        break;
      }
    }
  }
  return hold;
}

export class Sequence {
  readonly ids: number[] = [];
  /** The token to feed at the next decoding step (the last one picked). */
  next = -1;
  /** Characters of the decoded text already released. */
  private sent = 0;
  private text = '';
  private readonly rand: () => number;
  finish: FinishReason | null = null;
  readonly t0 = performance.now();
  firstTokenS = 0;

  constructor(
    readonly prompt: number[],
    readonly lora: LoraWeights | null,
    readonly params: SamplingParams,
    readonly cache: KVCache,
    private readonly io: { decode: (ids: number[]) => string; eos: Set<number>; onText?: (piece: string) => void },
  ) {
    this.rand = mulberry32(params.seed);
  }

  /** Picks the next token from its logits row [V] and updates the text; sets `finish` when the sequence ends. */
  accept(logits: Float32Array): void {
    const tok = pickToken(logits, this.params.temperature, this.params.topP, this.rand);
    if (this.ids.length === 0) this.firstTokenS = (performance.now() - this.t0) / 1000;
    if (this.io.eos.has(tok)) return this.end('stop');
    this.ids.push(tok);
    this.next = tok;
    const full = this.io.decode(this.ids);
    const stop = this.params.stop;
    if (stop.length) {
      // A stop string can only start in the unreleased tail (what came before was checked by an earlier step).
      const from = Math.max(0, this.sent - Math.max(...stop.map((s) => s.length)));
      let at = -1;
      for (const s of stop) {
        const i = full.indexOf(s, from);
        if (i >= 0 && (at < 0 || i < at)) at = i;
      }
      if (at >= 0) {
        this.text = full.slice(0, at);
        return this.end('stop');
      }
    }
    this.text = full;
    if (this.ids.length >= this.params.maxTokens) return this.end('length');
    if (!full.endsWith('\uFFFD')) this.release(full.length - heldBack(full, stop));
  }

  /** Ends the sequence: whatever text is final is released. */
  end(reason: FinishReason): void {
    if (this.finish) return;
    this.finish = reason;
    if (reason !== 'cancelled') this.release(this.text.length);
  }

  private release(upto: number): void {
    if (upto <= this.sent) return;
    this.io.onText?.(this.text.slice(this.sent, upto));
    this.sent = upto;
  }

  result(): Completion {
    return {
      text: this.text,
      ids: [...this.ids],
      promptTokens: this.prompt.length,
      completionTokens: this.ids.length,
      finishReason: this.finish ?? 'length',
      firstTokenS: this.firstTokenS,
      totalS: (performance.now() - this.t0) / 1000,
    };
  }
}
