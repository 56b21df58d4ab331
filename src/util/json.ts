// JSON syntax errors as one line with line:column. V8's JSON.parse messages quote the whole input (several lines
// for a config file) and, for many errors (e.g. NaN), give no position; this finds the first offending character.

/** Offset of the first character where `text` stops being valid JSON (text.length at a premature end), or -1. */
function jsonErrorOffset(text: string): number {
  let i = 0;
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
      ws();
      if (text[i] === close) return void i++;
      for (;;) {
        if (c === '{') {
          ws();
          str();
          ws();
          expect(':');
        }
        value();
        ws();
        if (text[i] === ',') i++;
        else return void expect(close);
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
  const at = Math.max(0, jsonErrorOffset(text));
  const before = text.slice(0, at).split('\n');
  const token = /^(-?[A-Za-z_]\w*|.)/s.exec(text.slice(at))?.[0];
  const what = token === undefined ? 'end of file' : /^\s$/.test(token) ? JSON.stringify(token) : `'${token}'`;
  const hint = token && /^-?(NaN|Infinity)$/.test(token) ? ' (NaN and Infinity are not JSON numbers)' : '';
  return `${file}:${before.length}:${before[before.length - 1].length + 1}: invalid JSON: unexpected ${what}${hint}`;
}
