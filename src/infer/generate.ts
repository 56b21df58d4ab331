// Text generation with a base model and an optional adapter: chat template with the generation prompt,
// prefill once, then one token at a time through the KV cache; greedy at temperature 0, else temperature +
// top-p (nucleus) sampling from a seeded generator; stops at an end-of-turn / eos token or max tokens.
import type { ChatTokenizer } from '../data/tokenizer.ts';
import type { ChatMessage } from '../data/types.ts';
import { createKVCache, disposeKVCache, forwardLogits, type BaseModel } from '../model/model.ts';
import type { LoraWeights } from '../model/lora.ts';
import { mulberry32 } from '../util/random.ts';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0: greedy (argmax). */
  temperature: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability reaches topP. */
  topP: number;
  seed: number;
  /** Called with each new piece of text as it is decoded (for streaming to a terminal). */
  onText?: (piece: string) => void;
}

/** Pick the next token from logits [V]: argmax at temperature 0, else sample softmax(logits/T) within top-p. */
export function pickToken(logits: Float32Array, temperature: number, topP: number, rand: () => number): number {
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const p = new Float64Array(logits.length);
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += p[i] = Math.exp((logits[i] - max) / temperature);
  const order = Array.from({ length: logits.length }, (_, i) => i).filter((i) => p[i] / z > 1e-12);
  order.sort((a, b) => p[b] - p[a]);
  // Smallest prefix with cumulative probability >= topP (always at least the top token).
  let keep = 0;
  let cum = 0;
  while (keep < order.length && (keep === 0 || cum < topP * z)) cum += p[order[keep++]];
  let u = rand() * cum;
  for (let k = 0; k < keep; k++) {
    u -= p[order[k]];
    if (u <= 0) return order[k];
  }
  return order[keep - 1];
}

export interface Generation {
  promptTokens: number;
  ids: number[];
  text: string;
  stop: 'eos' | 'length';
}

export function generate(
  base: BaseModel,
  lora: LoraWeights | null,
  tok: ChatTokenizer,
  messages: ChatMessage[],
  opts: GenerateOptions,
): Generation {
  const prompt = tok.encode(tok.render(messages, { addGenerationPrompt: true }));
  const stopIds = new Set(tok.eosTokenIds);
  const rand = mulberry32(opts.seed);
  const cache = createKVCache(base);
  const ids: number[] = [];
  let text = '';
  let stop: Generation['stop'] = 'length';
  try {
    let input = Int32Array.from(prompt); // prefill: the whole prompt once, then one token per step
    for (let n = 0; n < opts.maxNewTokens; n++) {
      const logits = forwardLogits(base, lora, input, undefined, cache, { lastOnly: true }); // [1, V]
      const next = pickToken(logits.dataSync() as Float32Array, opts.temperature, opts.topP, rand);
      logits.dispose();
      if (stopIds.has(next)) {
        stop = 'eos';
        break;
      }
      ids.push(next);
      const full = tok.decode(ids);
      // Emit only complete characters: a multi-byte character may span tokens (decoded as U+FFFD until done).
      if (!full.endsWith('\uFFFD')) {
        opts.onText?.(full.slice(text.length));
        text = full;
      }
      input = Int32Array.of(next);
    }
  } finally {
    disposeKVCache(cache);
  }
  text = ids.length ? tok.decode(ids) : ''; // the tokenizer throws on [] (an end of turn as the first token)
  return { promptTokens: prompt.length, ids, text, stop };
}
