// Where a chat template fails to parse. @huggingface/jinja's errors carry no position, so the template is
// parsed again line by line (each prefix ending at a line end): the first prefix that fails with the same
// message holds the culprit. A parser that runs out of tokens (an unclosed block or tag) fails with a TypeError
// instead; then the culprit opens on the line after the last prefix that parses.
import { parse, tokenize } from '@huggingface/jinja';

/** As Template's constructor tokenizes. */
const OPTIONS = { lstrip_blocks: true, trim_blocks: true };

export interface TemplateErrorAt {
  /** 1-based line of the template. */
  line: number;
  /** What is wrong, in words: the parser's message, or that something opened on `line` is never closed. */
  message: string;
}

function parseError(text: string): Error | null {
  try {
    parse(tokenize(text, OPTIONS));
    return null;
  } catch (e) {
    return e as Error;
  }
}

/** The parser read past the last token (tokens[current] undefined): the text ended inside something. */
const ranOut = (e: Error): boolean => e instanceof TypeError && /undefined \(reading '(type|value)'\)/.test(e.message);

/** The line of `text` where `err` (its parse error) arises, or null when it cannot be placed. */
export function locateTemplateError(text: string, err: Error): TemplateErrorAt | null {
  const ends: number[] = [];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) ends.push(i);
  ends.push(text.length);
  let parsed = 0; // lines [1, parsed] parse on their own
  for (let l = 0; l < ends.length; l++) {
    const e = parseError(text.slice(0, ends[l]));
    if (!e) parsed = l + 1;
    else if (!ranOut(err) && e.message === err.message) return { line: l + 1, message: err.message };
  }
  if (!ranOut(err) || parsed >= ends.length) return null;
  return {
    line: parsed + 1,
    message:
      'the template ends inside a block or tag that opens here (a missing {% endif %}, {% endfor %}, }}, %} ...)',
  };
}
