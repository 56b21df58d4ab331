// Loss mask by rendering prefixes and diffing (works for templates without {% generation %}):
//   ctx_k  = render(messages[:k], add_generation_prompt)   -> context, must be a prefix of the full render
//   turn_k = render(messages[:k+1]) minus ctx_k            -> what the model must write for turn k
// The trained span of turn k is turn_k cut after its last end-of-turn token (`<|im_end|>`, `<|eot_id|>`,
// `<end_of_turn>`): the model must learn to emit that token; the template's "\n" after it (and anything a
// template appends after the turn, like Llama's next header) is what the *next* turn's context starts with,
// so it is not trained. Then the text is tokenized once and the character spans mapped to tokens.
// A template whose prefix renders are not prefixes of the whole (Mistral-Nemo's puts the system message only
// before a final user message) falls back to finding each message's content in the full render, in order.
import { UserError } from '../errors.ts';
import type { ChatTokenizer } from './tokenizer.ts';
import type { ChatMessage } from './types.ts';

/** Character span [start, end) of the rendered text that is trained. */
export type Span = [number, number];

export interface RenderedConversation {
  text: string;
  /** Trained spans, ascending and disjoint, one per trained assistant turn. */
  spans: Span[];
  /** Set when the template breaks the prefix property (why) and the spans were found by content instead. */
  byContent?: string;
}

/** A short quote of `s` around `i` for error messages. */
const around = (s: string, i: number): string => JSON.stringify(s.slice(Math.max(0, i - 30), i + 30));

function firstDiff(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** End (exclusive) of the last end-of-turn token in `s`, or -1. */
function endOfLastEot(s: string, eots: string[]): number {
  let best = -1;
  for (const t of eots) {
    const i = s.lastIndexOf(t);
    if (i !== -1) best = Math.max(best, i + t.length);
  }
  return best;
}

/** End (exclusive) of the first end-of-turn token in `s` at or after `from`, or -1. */
function endOfFirstEot(s: string, from: number, eots: string[]): number {
  let best = -1;
  for (const t of eots) {
    const i = s.indexOf(t, from);
    if (i !== -1 && (best === -1 || i + t.length < best)) best = i + t.length;
  }
  return best;
}

/**
 * Render `messages` and find the trained span of each assistant turn in `trainTurns` (message indices).
 * Throws UserError (without file:line; the caller adds it) when the template breaks the prefix property and
 * the turns cannot be found by their content either.
 */
export function renderWithSpans(
  messages: ChatMessage[],
  trainTurns: number[],
  tok: ChatTokenizer,
  tools?: unknown[],
): RenderedConversation {
  const text = tok.render(messages, { tools });
  try {
    return { text, spans: spansByPrefixes(messages, trainTurns, tok, tools, text) };
  } catch (e) {
    const spans = e instanceof PrefixError ? spansByContent(messages, trainTurns, text, tok.endOfTurnTokens) : null;
    if (spans) return { text, spans, byContent: (e as Error).message };
    throw e;
  }
}

/** The template breaks the prefix property (renderWithSpans then tries spansByContent). */
class PrefixError extends UserError {}

/**
 * The trained spans found by content: each message's content is looked up in the full render after the previous
 * one's, and a trained turn is its content plus the end-of-turn token right after it (whitespace between
 * allowed; where the template has such tokens, an occurrence without one, like the same words inside a user
 * message, is passed over). A message the template leaves out (not found) is skipped; the pipeline's omission
 * check names it. Null when a trained turn has no plain content to look for (tool calls, reasoning) or is not
 * found in order.
 */
function spansByContent(messages: ChatMessage[], trainTurns: number[], text: string, eots: string[]): Span[] | null {
  const train = new Set(trainTurns);
  const spans: Span[] = [];
  let from = 0;
  for (let j = 0; j < messages.length; j++) {
    const m = messages[j];
    if (!train.has(j)) {
      const at = m.content ? text.indexOf(m.content, from) : -1;
      if (at !== -1) from = at + m.content.length;
      continue;
    }
    if (!m.content || m.tool_calls?.length || m.reasoning_content) return null;
    const span = turnByContent(m.content, text, from, eots);
    if (!span) return null;
    spans.push(span);
    from = span[1];
  }
  return spans;
}

/** The first occurrence of `content` at or after `from` with an end-of-turn token after it (any, without eots). */
function turnByContent(content: string, text: string, from: number, eots: string[]): Span | null {
  for (let at = text.indexOf(content, from); at !== -1; at = text.indexOf(content, at + 1)) {
    const end = at + content.length;
    let after = end; // past the whitespace after the content (no copy of the rest of the text per occurrence)
    while (after < text.length && /\s/.test(text[after])) after++;
    const eot = eots.find((t) => text.startsWith(t, after));
    if (eot) return [at, after + eot.length];
    if (eots.length === 0) return [at, end];
  }
  return null;
}

/** The trained spans by rendering prefixes (the file comment); PrefixError where the template breaks that. */
function spansByPrefixes(
  messages: ChatMessage[],
  trainTurns: number[],
  tok: ChatTokenizer,
  tools: unknown[] | undefined,
  text: string,
): Span[] {
  const spans: Span[] = [];
  const eots = tok.endOfTurnTokens;
  for (const k of trainTurns) {
    const ctx = tok.render(messages.slice(0, k), { tools, addGenerationPrompt: true });
    if (!text.startsWith(ctx)) {
      const d = firstDiff(ctx, text);
      throw new PrefixError(
        `chat template breaks the prefix property: messages[0..${k}) rendered with the generation prompt is not a prefix of the whole conversation (they differ at character ${d}: ${around(ctx, d)} vs ${around(text, d)})`,
      );
    }
    const upto = tok.render(messages.slice(0, k + 1), { tools });
    if (!upto.startsWith(ctx)) {
      const d = firstDiff(ctx, upto);
      throw new PrefixError(
        `chat template breaks the prefix property: its generation prompt does not match how it renders assistant message ${k} (differ at character ${d}: ${around(ctx, d)} vs ${around(upto, d)})`,
      );
    }
    const turn = upto.slice(ctx.length);
    const cut = endOfLastEot(turn, eots);
    const trained = cut === -1 ? turn : turn.slice(0, cut);
    const start = ctx.length;
    let end: number;
    if (text.startsWith(trained, start)) end = start + trained.length;
    else {
      // The template renders this turn differently once later messages follow (Qwen3 adds an empty
      // <think></think> only to the last turn): take the turn as the whole conversation renders it,
      // up to its first end-of-turn token.
      end = endOfFirstEot(text, start, eots);
      if (end === -1) {
        const d = start + firstDiff(trained, text.slice(start));
        throw new PrefixError(
          `chat template breaks the prefix property: assistant message ${k} renders differently when later messages follow (at character ${d}: ${around(text, d)}) and the template has no end-of-turn token to delimit it`,
        );
      }
    }
    if (end <= start)
      throw new UserError(`assistant message ${k} renders to no text (empty content and no end-of-turn token)`);
    const prev = spans[spans.length - 1];
    if (prev && start < prev[1])
      throw new PrefixError(
        `chat template breaks the prefix property: assistant message ${k} overlaps the previous trained turn`,
      );
    spans.push([start, end]);
  }
  return spans;
}

export interface MaskedTokens {
  ids: number[];
  /** 1 where the token is (part of) a trained span. */
  trained: Uint8Array;
  /** 'segments': per-segment tokenization matched the full one; 'decode': offsets recovered by decoding. */
  method: 'segments' | 'decode';
}

/**
 * Tokenize `text` once and mark the tokens inside `spans`. The tokenizer has no offsets, so tokenize the
 * segments between span boundaries separately; when their concatenation equals the full tokenization the
 * boundaries are exact. Otherwise (a merge across a boundary) fall back to offsets from decoding prefixes:
 * a token is trained when its characters overlap a span.
 */
export function tokenizeWithSpans(
  text: string,
  spans: Span[],
  tok: ChatTokenizer,
  opts: { forceDecode?: boolean } = {},
): MaskedTokens {
  const ids = tok.encode(text);
  if (!opts.forceDecode) {
    const segIds: number[] = [];
    const flags: number[] = [];
    let pos = 0;
    const push = (a: number, b: number, flag: number) => {
      if (b <= a) return;
      for (const id of tok.encode(text.slice(a, b))) {
        segIds.push(id);
        flags.push(flag);
      }
    };
    for (const [s, e] of spans) {
      push(pos, s, 0);
      push(s, e, 1);
      pos = e;
    }
    push(pos, text.length, 0);
    if (segIds.length === ids.length && segIds.every((id, i) => id === ids[i]))
      return { ids, trained: Uint8Array.from(flags), method: 'segments' };
  }
  return { ids, trained: maskByDecoding(text, ids, spans, tok), method: 'decode' };
}

/** Offsets by decoding: end(i) = length of decode(ids[0..i]); binary search keeps it O(log T) decodes per boundary. */
function maskByDecoding(text: string, ids: number[], spans: Span[], tok: ChatTokenizer): Uint8Array {
  if (tok.decode(ids) !== text)
    throw new UserError(
      'cannot map the loss mask to tokens: the tokenizer does not decode the rendered text back exactly',
    );
  const cache = new Map<number, number>();
  const end = (i: number): number => {
    // characters covered by tokens [0, i)
    let v = cache.get(i);
    if (v === undefined) cache.set(i, (v = i === 0 ? 0 : tok.decode(ids.slice(0, i)).length));
    return v;
  };
  // first token index i whose end(i+1) > c, i.e. the token containing character c
  const tokenAt = (c: number): number => {
    let lo = 0;
    let hi = ids.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (end(mid + 1) > c) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const trained = new Uint8Array(ids.length);
  for (const [s, e] of spans) {
    const a = tokenAt(s);
    const b = tokenAt(e - 1);
    for (let i = a; i <= b; i++) trained[i] = 1;
  }
  return trained;
}
