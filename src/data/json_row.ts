// One dataset line as JSON, read as Hugging Face reads it (Python's json.loads): numbers inside `tools` and inside
// object tool-call `arguments` keep the text Python prints for them (py_number.ts), because the chat template
// prints them back with tojson. Everything else (weights, roles, content) is JSON.parse's value, unchanged.
import { pyNumberFromLiteral } from './py_number.ts';

/** Where a value sits in a row: the path to tools / messages[].tool_calls[].function.arguments, or elsewhere. */
type At = 'root' | 'messages' | 'message' | 'calls' | 'call' | 'function' | 'keep' | 'plain';

const IN_OBJECT: Partial<Record<At, Record<string, At>>> = {
  root: { tools: 'keep', messages: 'messages' },
  message: { tool_calls: 'calls' },
  call: { function: 'function' },
  function: { arguments: 'keep' },
};
// A bare array at the root is a conversation's messages (`generate --messages`; no dataset row is one).
const IN_ARRAY: Partial<Record<At, At>> = { root: 'message', messages: 'message', calls: 'call', keep: 'keep' };

/**
 * The value of one JSONL line; throws JSON.parse's SyntaxError on invalid JSON. Lines without tools or
 * arguments, or without a number Python could print differently (a `.`, an exponent, 16+ digits), are
 * JSON.parse's value as they are: the second, slower read is for tool rows with such numbers only.
 */
export function parseRowJson(text: string): unknown {
  const value: unknown = JSON.parse(text);
  if (!/"(tools|arguments)"/.test(text) || !/\d[.eE]|\d{16}/.test(text)) return value;
  return new RowReader(text).value('root');
}

const STRING = /"[^"\\]*(?:\\.[^"\\]*)*"/y;
const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** A reader for text JSON.parse has accepted (so it checks nothing). */
class RowReader {
  private i = 0;
  constructor(private readonly text: string) {}

  value(at: At): unknown {
    this.space();
    const c = this.text[this.i];
    if (c === '{') return this.object(at);
    if (c === '[') return this.array(at);
    if (c === '"') return this.string();
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const)
      if (this.text.startsWith(word, this.i)) return ((this.i += word.length), v);
    const src = this.match(NUMBER);
    return at === 'keep' ? pyNumberFromLiteral(src) : Number(src);
  }

  private object(at: At): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.i++;
    while (this.next() !== '}') {
      const key = this.string();
      this.next(); // ':'
      const v = this.value(at === 'keep' ? 'keep' : (IN_OBJECT[at]?.[key] ?? 'plain'));
      // As JSON.parse: "__proto__" is an own key, not the prototype.
      Object.defineProperty(out, key, { value: v, writable: true, enumerable: true, configurable: true });
    }
    return out;
  }

  private array(at: At): unknown[] {
    const out: unknown[] = [];
    this.i++;
    while (this.next() !== ']') out.push(this.value(IN_ARRAY[at] ?? 'plain'));
    return out;
  }

  /** Skip whitespace and a separator (`,` or `:`); the character after it, consumed when it closes (`}` `]`). */
  private next(): string {
    this.space();
    if (this.text[this.i] === ',' || this.text[this.i] === ':') this.i++;
    this.space();
    const c = this.text[this.i];
    if (c === '}' || c === ']') this.i++;
    return c;
  }

  private space(): void {
    while (this.i < this.text.length && ' \t\n\r'.includes(this.text[this.i])) this.i++;
  }

  private string(): string {
    const s = this.match(STRING);
    return s.includes('\\') ? (JSON.parse(s) as string) : s.slice(1, -1);
  }

  private match(re: RegExp): string {
    re.lastIndex = this.i;
    const m = re.exec(this.text)![0];
    this.i += m.length;
    return m;
  }
}
