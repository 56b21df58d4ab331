// A number of a dataset's `tools` or tool-call `arguments` that JavaScript would print differently from Python.
// Hugging Face renders these with json.loads then json.dumps: `1.0` stays `1.0`, `1.5e-07` keeps Python's exponent,
// `12345678901234567890` stays exact. JSON.parse would make them `1`, `1.5e-7`, `12345678901234567000`, and the
// model would train on those tokens. So the row reader (json_row.ts) keeps their Python text here.

/** A number with the text Python prints for it; arithmetic and JSON.stringify see `value`. */
export class PyNumber {
  constructor(
    /** What Python's json.dumps and str() print: repr(float) or the exact int. */
    readonly text: string,
    /** The nearest JavaScript number. */
    readonly value: number,
    readonly isInt: boolean,
  ) {}

  valueOf(): number {
    return this.value;
  }

  toJSON(): number {
    return this.value;
  }

  toString(): string {
    return this.text;
  }
}

/**
 * Python's repr(float) (= json.dumps of a float): the shortest round-trip digits, as JavaScript's, but `.0` on
 * integral values and exponent form, with at least two exponent digits, when the exponent is < -4 or >= 16
 * (CPython float_repr_style 'short': `1e+16`, `1.5e-07`, `0.0001`, `-0.0`).
 */
export function pyFloatRepr(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mant, exp] = Math.abs(x).toExponential().split('e'); // shortest round-trip digits: "1.2345e+2"
  const digits = mant.replace('.', '');
  const e = Number(exp);
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  if (e >= digits.length - 1) return `${sign}${digits}${'0'.repeat(e - digits.length + 1)}.0`;
  return `${sign}${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
}

/**
 * A JSON number literal as Python's json.loads reads it: a plain number where JavaScript prints it as Python
 * would (`0.5`, `42`), else a PyNumber (`1.0`, `1e-07`, `-0.0`, ints beyond 2^53).
 */
export function pyNumberFromLiteral(src: string): number | PyNumber {
  const value = Number(src);
  if (!/[.eE]/.test(src))
    return Number.isSafeInteger(value) ? value : new PyNumber(src.replace(/^-0$/, '0'), value, true);
  if (!Number.isFinite(value)) return value; // 1e999: Python's inf; JavaScript's Infinity as before
  const text = pyFloatRepr(value);
  return text === String(value) ? value : new PyNumber(text, value, false);
}
