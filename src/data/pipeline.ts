// Dataset rows -> training examples: expand (expand.ts) -> render + mask + tokenize (mask.ts) -> weights -> truncate.
import { UserError, at } from '../errors.ts';
import { renderWithSpans, tokenizeWithSpans } from './mask.ts';
import type { ChatTokenizer } from './tokenizer.ts';
import { expandConversation, type Conversation } from './expand.ts';
import type { DatasetExample, TokenizedExample } from './types.ts';

export { type Conversation };

export const DEFAULT_MAX_CONTEXT_LENGTH = 32768;

/**
 * Whether the turn's rendered `span` holds all the text of `field`: each non-blank line, with <think> tags cut
 * out, must appear. Templates move an inline <think>...</think> into their think section and trim edges; only
 * text that is really dropped fails.
 */
function rendersAll(field: string, span: string): boolean {
  return field
    .split(/<\/?think>|\n/)
    .map((p) => p.trim())
    .every((p) => !p || span.includes(p));
}

/**
 * What the template silently left out of this conversation (tools, a system or user message, tool_calls,
 * reasoning or content of a trained turn), found by looking for the text in the render. Such data is neither
 * seen nor trained.
 */
export function templateOmissions(
  conv: Conversation,
  text: string,
  spans: [number, number][],
  tools?: unknown[],
): string[] {
  const out: string[] = [];
  const name = (t: unknown) => (t as { function?: { name?: string } })?.function?.name;
  if (tools?.length && !tools.some((t) => name(t) && text.includes(name(t)!))) out.push('the tools');
  conv.messages.forEach((m, k) => {
    // Mistral-Nemo's template renders the system message only before a final user message.
    if ((m.role === 'system' || m.role === 'user') && !rendersAll(m.content, text))
      out.push(`the ${m.role} message ${k}`);
  });
  conv.trainTurns.forEach((k, j) => {
    const m = conv.messages[k];
    const span = text.slice(spans[j][0], spans[j][1]);
    if (!rendersAll(m.content, span))
      out.push(
        /<think>[\s\S]*<\/think>/.test(m.content) && rendersAll(m.content.replace(/<think>[\s\S]*<\/think>/, ''), span)
          ? `the <think> block in the content of assistant message ${k} (templates drop the thinking of earlier turns; give it as reasoning_content to train each turn with its own)`
          : `the content of assistant message ${k}`,
      );
    if (m.tool_calls?.some((c) => !span.includes(c.function.name)))
      out.push(`the tool_calls of assistant message ${k}`);
    if (m.reasoning_content && !rendersAll(m.reasoning_content, span))
      out.push(`the reasoning_content of assistant message ${k}`);
  });
  return out;
}

export interface BuildStats {
  /** Tokens of every dataset conversation rendered once, whole (before expansion and truncation). */
  rawTokens: number;
  /** Tokens of all training examples (after expansion and truncation): what is fed to the model. */
  tunedTokens: number;
  /** Tokens with a loss (trained spans of rows whose root weight is not 0), after truncation. */
  trainedTokens: number;
  /** Examples cut to maxContextLength. */
  truncated: number;
  /** Examples dropped because truncation left no trained token. */
  dropped: number;
  /** Training examples produced (after expansion). */
  examples: number;
  /** Dataset rows skipped because of an error reported through `onError`. */
  failed: number;
  /** Examples whose mask needed the decode fallback (tokens merged across a span boundary). */
  decodeFallback: number;
}

export interface BuildOptions {
  maxContextLength: number;
  warn?: (msg: string) => void;
  /** Test hook: always map spans to tokens by decoding. */
  forceDecode?: boolean;
  /**
   * When given, an example the template cannot render (or mask) is reported here as `FILE:LINE: msg` and
   * skipped, so every such problem can be listed; otherwise the first one throws a UserError.
   */
  onError?: (msg: string) => void;
}

/**
 * The template's warnings over a build: examples masked by content (the template breaks the prefix property; the
 * first named) and examples whose data the template leaves out (the first 5 named), then counts.
 */
function templateNotes(warn: (msg: string) => void) {
  let omitted = 0;
  let byContent = 0;
  return {
    example(where: (msg: string) => string, whyByContent: string | undefined, missing: string[]) {
      if (whyByContent && byContent++ === 0)
        warn(where(`${whyByContent}; its trained turns were found by their content in the whole render instead`));
      if (missing.length && omitted++ < 5)
        warn(
          where(
            `the chat template does not render ${missing.join(', ')}: the model neither sees nor learns that part, the rest of the example is still trained (pass a template that renders it with --jinja-template)`,
          ),
        );
    },
    end() {
      if (omitted > 5)
        warn(`the chat template left data out of ${omitted} training examples in all (first 5 named above)`);
      if (byContent > 1)
        warn(`the trained turns of ${byContent} training examples were found by their content (first named above)`);
    },
  };
}

/**
 * Render, mask, expand and truncate every example. Template failures and turns that cannot be located throw
 * UserError `FILE:LINE: ...`; truncation warns through `opts.warn`, naming the example.
 */
export function buildExamples(
  examples: DatasetExample[],
  tok: ChatTokenizer,
  opts: BuildOptions,
): { examples: TokenizedExample[]; stats: BuildStats } {
  const max = opts.maxContextLength;
  if (!Number.isInteger(max) || max < 2) throw new UserError(`maxContextLength must be an integer >= 2, got ${max}`);
  const warn = opts.warn ?? ((m: string) => console.warn(m));
  const stats: BuildStats = {
    rawTokens: 0,
    tunedTokens: 0,
    trainedTokens: 0,
    truncated: 0,
    dropped: 0,
    examples: 0,
    decodeFallback: 0,
    failed: 0,
  };
  const out: TokenizedExample[] = [];
  const notes = templateNotes(warn);
  for (const ex of examples) {
    const where = (msg: string) => at(ex.file ?? 'dataset', ex.line, msg);
    const before = { n: out.length, stats: { ...stats } }; // to undo a row that fails half-way
    try {
      const convs = expandConversation(ex.messages);
      if (convs.length === 0) throw new UserError('no trainable assistant message');
      const w = ex.weight ?? 1;
      let rawCounted = false;
      for (const conv of convs) {
        const { text, spans, byContent } = renderWithSpans(conv.messages, conv.trainTurns, tok, ex.tools);
        notes.example(where, byContent, templateOmissions(conv, text, spans, ex.tools));
        const masked = tokenizeWithSpans(text, spans, tok, { forceDecode: opts.forceDecode });
        if (masked.method === 'decode') stats.decodeFallback++;
        if (convs.length === 1 && conv.messages.length === ex.messages.length) {
          stats.rawTokens += masked.ids.length;
          rawCounted = true;
        }
        masked.trained[0] = 0; // nothing in the example predicts its first token
        const last = masked.trained.lastIndexOf(1);
        if (last === -1) throw new UserError('the chat template leaves no trained token in this example');
        const kept = conv.tail ? truncateTo(masked.ids, masked.trained, last + 1) : masked; // the tail trains nothing
        const { ids, trained, lost } = truncateTo(kept.ids, kept.trained, max);
        if (ids.length < kept.ids.length) {
          stats.truncated++;
          const left = trained.reduce((a, b) => a + b, 0);
          const why = left === 0 ? 'it has no trained token left, so it is skipped' : `(${lost} trained tokens cut)`;
          warn(where(`example has ${kept.ids.length} tokens; truncated to maxContextLength ${max} ${why}`));
          if (left === 0) {
            stats.dropped++;
            continue;
          }
        }
        const weights = Array.from(trained, (t) => (t ? w : 0));
        stats.tunedTokens += ids.length;
        if (w !== 0) stats.trainedTokens += trained.reduce((a, b) => a + b, 0); // as the loss normaliser counts
        out.push({ line: ex.line, file: ex.file, inputIds: ids, weights });
      }
      if (!rawCounted) stats.rawTokens += tok.encode(tok.render(ex.messages, { tools: ex.tools })).length;
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      if (!opts.onError) throw new UserError(where(e.message));
      opts.onError(where(e.message));
      out.length = before.n;
      Object.assign(stats, before.stats);
      stats.failed++;
    }
  }
  notes.end();
  stats.examples = out.length;
  if (examples.length > 0 && out.length === 0 && stats.failed === 0)
    throw new UserError(`no training example left (all ${stats.dropped} were dropped by truncation to ${max} tokens)`);
  return { examples: out, stats };
}

/** The first `max` tokens and their trained flags, and how many trained tokens were cut. */
function truncateTo<I extends { length: number; slice(a: number, b: number): I }>(
  ids: I,
  trained: Uint8Array,
  max: number,
): { ids: I; trained: Uint8Array; lost: number } {
  if (ids.length <= max) return { ids, trained, lost: 0 };
  return {
    ids: ids.slice(0, max),
    trained: trained.subarray(0, max),
    lost: trained.subarray(max).reduce((a, b) => a + b, 0),
  };
}
