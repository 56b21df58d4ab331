// Numbers as Python's json.dumps prints them (expected values printed by CPython 3: json.dumps(float(x))).
import { describe, expect, it } from 'vitest';
import { PyNumber, pyFloatRepr, pyNumberFromLiteral } from '../../src/data/py_number.ts';

const PYTHON: Record<string, string> = {
  '1.0': '1.0',
  '21.0': '21.0',
  '-0.0': '-0.0',
  '0.0': '0.0',
  '0.1': '0.1',
  '0.5': '0.5',
  '1.5e-07': '1.5e-07',
  '1e-05': '1e-05',
  '0.0001': '0.0001',
  '0.00012345': '0.00012345',
  '1e+16': '1e+16',
  '9999999999999998.0': '9999999999999998.0',
  '1e+20': '1e+20',
  '1.7976931348623157e+308': '1.7976931348623157e+308',
  '5e-324': '5e-324',
  '123456.789': '123456.789',
  '-2.5e-05': '-2.5e-05',
  '1e22': '1e+22',
  '2.50': '2.5',
  '1E5': '100000.0',
  '1.0000000000000002': '1.0000000000000002',
  '3.141592653589793': '3.141592653589793',
  '12345678901234567.0': '1.2345678901234568e+16',
};

describe('pyFloatRepr: repr(float) as CPython prints it', () => {
  for (const [literal, want] of Object.entries(PYTHON))
    it(`${literal} -> ${want}`, () => expect(pyFloatRepr(Number(literal))).toBe(want));
});

describe('pyNumberFromLiteral: what json.loads keeps', () => {
  it('keeps plain numbers where JavaScript prints what Python prints', () => {
    for (const src of ['0.1', '0.5', '42', '-7', '9007199254740991', '2.50', '-0', '123456.789'])
      expect(pyNumberFromLiteral(src), src).toBe(src === '-0' ? -0 : Number(src));
  });
  it('keeps the Python text of integral floats, exponent floats and negative zero', () => {
    for (const [src, text] of [
      ['1.0', '1.0'],
      ['21.0', '21.0'],
      ['-0.0', '-0.0'],
      ['1.5e-07', '1.5e-07'],
      ['1E5', '100000.0'],
      ['1e+20', '1e+20'],
    ]) {
      const n = pyNumberFromLiteral(src);
      expect(n, src).toBeInstanceOf(PyNumber);
      expect(String(n)).toBe(text);
      expect(Number(n)).toBe(Number(src));
      expect((n as PyNumber).isInt).toBe(false);
    }
  });
  it('keeps ints beyond 2^53 exact, as Python ints', () => {
    for (const src of ['12345678901234567890', '-12345678901234567890', '9007199254740993']) {
      const n = pyNumberFromLiteral(src) as PyNumber;
      expect(n.text).toBe(src);
      expect(n.isInt).toBe(true);
      expect(JSON.stringify({ n })).toBe(JSON.stringify({ n: Number(src) }));
    }
  });
});
