// Numbers the row reader kept as Python prints them (py_number.ts: `1.0`, `1.5e-07`, ints past 2^53), in
// @huggingface/jinja: the port's IntegerValue / FloatValue printing Python's text for `{{ x }}`, |string and repr,
// and |tojson printing it too (the port's tojson writes JSON.stringify(value): `1`, `1.5e-7`).
import { Environment } from '@huggingface/jinja';
import { PyNumber } from './py_number.ts';

type Runtime = { type: string; value: unknown };
type RuntimeClass = new (value?: unknown) => Runtime;
type PyValue = Runtime & { pyText: string };

interface Classes {
  Int: RuntimeClass;
  Float: RuntimeClass;
  Obj: RuntimeClass;
  Arr: RuntimeClass;
  /** The port's own conversion of a JavaScript value. */
  convert: (x: unknown) => Runtime;
}
let found: Classes | undefined;

/** The port's runtime classes, reached through an Environment (the package exports none of them). */
function classes(): Classes {
  if (found) return found;
  const env = new Environment();
  const convert = (x: unknown): Runtime => {
    const v = env.set('x', x) as unknown as Runtime;
    env.variables.delete('x');
    return v;
  };
  const printsPython = (Base: RuntimeClass): RuntimeClass =>
    class extends Base {
      pyText = '';
      override toString(): string {
        return this.pyText;
      }
    };
  const classOf = (x: unknown) => convert(x).constructor as RuntimeClass;
  found = {
    Int: printsPython(classOf(1)),
    Float: printsPython(classOf(0.5)),
    Obj: classOf({}),
    Arr: classOf([]),
    convert,
  };
  return found;
}

/** A dataset value (messages, tools) as a template value; a PyNumber becomes a number printing Python's text. */
export function toRuntime(x: unknown): Runtime {
  const c = classes();
  if (x instanceof PyNumber) return Object.assign(new (x.isInt ? c.Int : c.Float)(x.value), { pyText: x.text });
  if (Array.isArray(x)) return new c.Arr(x.map(toRuntime));
  if (typeof x === 'object' && x !== null)
    return new c.Obj(new Map(Object.entries(x).map(([k, v]) => [k, toRuntime(v)])));
  return c.convert(x);
}

const isPyValue = (v: Runtime): v is PyValue => 'pyText' in v;

/** Whether a dataset value (plain objects, arrays) or a template value (lists, dicts) holds a Python number. */
export function hasPyNumber(x: unknown): boolean {
  if (typeof x !== 'object' || x === null) return false;
  if (x instanceof PyNumber || isPyValue(x as Runtime)) return true;
  if (Array.isArray(x)) return x.some(hasPyNumber);
  if (x instanceof Map) return [...x.values()].some(hasPyNumber);
  if (x.constructor === Object) return Object.values(x).some(hasPyNumber);
  const v = (x as Runtime).value; // a template list or dict
  return (Array.isArray(v) || v instanceof Map) && hasPyNumber(v);
}

/**
 * |tojson of a value holding Python numbers: the port's own tojson (`dump`: its indent, separators, sort_keys,
 * ensure_ascii) with each number stood in for by a marker string (NUL, SOH, index), then the marker replaced.
 */
export function pyToJson(operand: Runtime, dump: (o: Runtime) => Runtime): Runtime {
  const texts: string[] = [];
  const c = classes();
  const mask = (v: Runtime): Runtime => {
    if (isPyValue(v)) return c.convert(`\u0000\u0001${texts.push(v.pyText) - 1}`);
    const Same = v.constructor as RuntimeClass;
    if (Array.isArray(v.value)) return new Same(v.value.map(mask));
    if (v.value instanceof Map) return new Same(new Map([...v.value].map(([k, x]) => [k, mask(x)])));
    return v;
  };
  const out = dump(mask(operand)).value as string;
  return c.convert(out.replace(/"\\u0000\\u0001(\d+)"/g, (_, i: string) => texts[Number(i)]));
}
