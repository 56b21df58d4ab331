// JSON syntax errors as one line with line:column. V8's JSON.parse messages quote the whole input (several lines
// for a config file) and, for many errors (e.g. NaN), give no position; this finds the first offending character.
// The same walk finds the line of each top-level key, so a bad value in a config file is named by its line.

/**
 * Offset of the first character where `text` stops being valid JSON (text.length at a premature end), or -1.
 * onKey(key, offset, depth) sees each object key as it is read (depth 1: the outermost object's).
 */
function walkJson(text: string, onKey?: (key: string, at: number, depth: number) => void): number {
  let i = 0,
    depth = 0;
  const fail = (): never => {
    throw i;
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const expect = (c: string) => (text[i] === c ? i++ : fail());
  const str = () => {
    expect('"');
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : text[i] < ' ' ? fail() : 1;
    expect('"');
  };
  const NUM = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      depth++;
      ws();
      if (text[i] === close) return void (i++, depth--);
      for (;;) {
        if (c === '{') {
          ws();
          const at = i;
          str();
          if (onKey) onKey(JSON.parse(text.slice(at, i)) as string, at, depth); // only on valid text: escapes unchecked
          ws();
          expect(':');
        }
        value();
        ws();
        if (text[i] === ',') i++;
        else return void (expect(close), depth--);
      }
    }
    if (c === '"') return str();
    for (const lit of ['true', 'false', 'null']) if (text.startsWith(lit, i)) return void (i += lit.length);
    NUM.lastIndex = i;
    if (NUM.exec(text)) i = NUM.lastIndex;
    else fail();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
    return -1;
  } catch (at) {
    if (typeof at === 'number') return Math.min(at, text.length);
    throw at;
  }
}

/** `FILE:LINE:COL: invalid JSON: unexpected 'NaN' (...)`, one line, for a text JSON.parse rejected. */
export function jsonSyntaxError(file: string, text: string): string {
  const at = Math.max(0, walkJson(text));
  const before = text.slice(0, at).split('\n');
  const token = /^(-?[A-Za-z_]\w*|.)/s.exec(text.slice(at))?.[0];
  const what = token === undefined ? 'end of file' : /^\s$/.test(token) ? JSON.stringify(token) : `'${token}'`;
  const hint = token && /^-?(NaN|Infinity)$/.test(token) ? ' (NaN and Infinity are not JSON numbers)' : '';
  return `${file}:${before.length}:${before[before.length - 1].length + 1}: invalid JSON: unexpected ${what}${hint}`;
}

/** The line (1-based) of each key of the outermost object in a valid JSON text; a repeated key: its last line, as
 *  JSON.parse keeps the last value. */
export function topLevelKeyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  let line = 1,
    seen = 0;
  walkJson(text, (key, at, depth) => {
    if (depth !== 1) return;
    for (; seen < at; seen++) if (text[seen] === '\n') line++; // keys come in order: count newlines once
    lines.set(key, line);
  });
  return lines;
}
