// Python semantics for the string methods and filters of @huggingface/jinja, so chat templates render as
// transformers' apply_chat_template renders them with Python jinja2. The port trims with JavaScript's trim()
// and ignores the characters argument: `content.lstrip('\n')` would drop an answer's code indentation.
// Fixed here, checked against Python by test/data/template_parity.test.ts:
//   str.strip/lstrip/rstrip(chars=None)   a set of characters; None = str.isspace()'s whitespace
//   str.split(sep=None, maxsplit=-1)      Python's whitespace set for sep=None
//   str.capitalize()                      lowercases the rest;  |length, len(): code points, not UTF-16 units
//   |trim / |trim(chars)                  jinja2's do_trim = str.strip(chars)
//   numbers of tools / tool-call arguments  json.dumps' and str()'s text (jinja_numbers.ts: `1.0`, `1.5e-07`)
// The port has no hook for string builtins, so the patch wraps StringValue's `builtins` getter and the
// interpreter's applyFilter once, at import; the classes are reached through the public Environment.
import { Environment, Interpreter } from '@huggingface/jinja';
import { hasPyNumber, pyToJson, toRuntime } from './jinja_numbers.ts';

/** Characters for which Python's str.isspace() is true (JavaScript's \s differs: \ufeff yes, \x1c-\x1f \x85 no). */
const PY_SPACE = new Set(Array.from(' \t\n\v\f\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000'));
for (let c = 0x2000; c <= 0x200a; c++) PY_SPACE.add(String.fromCharCode(c));

/** Python's str.strip/lstrip/rstrip: `chars` is a set of characters (code points); null = whitespace. */
function pyStrip(s: string, chars: string | null, left = true, right = true): string {
  const drop = chars === null ? PY_SPACE : new Set(Array.from(chars));
  const cps = Array.from(s);
  let i = 0;
  let j = cps.length;
  if (left) while (i < j && drop.has(cps[i])) i++;
  if (right) while (j > i && drop.has(cps[j - 1])) j--;
  return i === 0 && j === cps.length ? s : cps.slice(i, j).join('');
}

/** Python's str.split(sep=None, maxsplit=-1). */
function pySplit(s: string, sep: string | null, maxsplit = -1): string[] {
  if (sep === '') throw new Error('ValueError: empty separator');
  if (sep !== null) {
    const parts = s.split(sep);
    return maxsplit >= 0 && parts.length > maxsplit + 1
      ? [...parts.slice(0, maxsplit), parts.slice(maxsplit).join(sep)]
      : parts;
  }
  // Runs of whitespace separate; leading whitespace is skipped; the remainder after maxsplit keeps its own.
  const cps = Array.from(s);
  const out: string[] = [];
  let i = 0;
  while (i < cps.length) {
    while (i < cps.length && PY_SPACE.has(cps[i])) i++;
    if (i === cps.length) break;
    if (maxsplit >= 0 && out.length === maxsplit) {
      out.push(cps.slice(i).join(''));
      break;
    }
    let j = i;
    while (j < cps.length && !PY_SPACE.has(cps[j])) j++;
    out.push(cps.slice(i, j).join(''));
    i = j;
  }
  return out;
}

/** Python's str.capitalize(): first character upper-cased, the rest lower-cased. */
function pyCapitalize(s: string): string {
  const [first = '', ...rest] = Array.from(s);
  return first.toUpperCase() + rest.join('').toLowerCase();
}

// ---- the patch: runtime value classes of the port, reached through an Environment ----

type Runtime = { type: string; value: unknown };
type RuntimeClass = new (value?: unknown) => Runtime;
type Builtins = Map<string, Runtime>;

function runtimeClasses(): { StringValue: RuntimeClass; FunctionValue: RuntimeClass; IntegerValue: RuntimeClass } {
  const env = new Environment();
  env.set('s', 'x');
  env.set('f', () => null);
  const str = env.lookupVariable('s') as unknown as { constructor: RuntimeClass; builtins: Builtins };
  return {
    StringValue: str.constructor,
    FunctionValue: (env.lookupVariable('f') as unknown as { constructor: RuntimeClass }).constructor,
    IntegerValue: (str.builtins.get('length') as unknown as { constructor: RuntimeClass }).constructor,
  };
}

/** A string argument, or null for a missing / None one (Python's default); anything else is an error. */
function charsArg(v: Runtime | undefined, method: string): string | null {
  if (v === undefined || v.type === 'NullValue' || v.type === 'UndefinedValue') return null;
  if (v.type === 'StringValue') return v.value as string;
  throw new Error(`TypeError: ${method} arg must be None or str, not ${v.type}`);
}

let installed = false;

/** Install the Python semantics into @huggingface/jinja (idempotent; createChatTemplate calls it). */
function installPythonStringSemantics(): void {
  if (installed) return;
  installed = true;
  installPlusTypeCheck();
  const { StringValue, FunctionValue, IntegerValue } = runtimeClasses();
  const str = (s: string) => new StringValue(s);
  const fn = (f: (args: Runtime[]) => Runtime) => new FunctionValue(f);
  const proto = StringValue.prototype as { builtins: Builtins };
  const base = Object.getOwnPropertyDescriptor(proto, 'builtins')!.get!;
  const patched = new WeakSet<Builtins>();
  Object.defineProperty(proto, 'builtins', {
    configurable: true,
    get(this: { value: string }) {
      const m = base.call(this) as Builtins;
      if (patched.has(m)) return m;
      patched.add(m);
      const s = this.value;
      m.set(
        'strip',
        fn(([c]) => str(pyStrip(s, charsArg(c, 'strip')))),
      );
      m.set(
        'lstrip',
        fn(([c]) => str(pyStrip(s, charsArg(c, 'lstrip'), true, false))),
      );
      m.set(
        'rstrip',
        fn(([c]) => str(pyStrip(s, charsArg(c, 'rstrip'), false, true))),
      );
      m.set(
        'split',
        fn(([sep, max]) => {
          const n = max === undefined || max.type === 'NullValue' ? -1 : Number(max.value);
          const parts = pySplit(s, charsArg(sep, 'split'), n);
          return new (arrayClass())(parts.map(str));
        }),
      );
      m.set(
        'capitalize',
        fn(() => str(pyCapitalize(s))),
      );
      return m;
    },
  });
  // Lists, dicts and booleans print as Python prints them ({{ x }}, |string): ['a', 1], {'k': None}, True.
  for (const v of [[], {}, true]) {
    const env = new Environment();
    env.set('v', v);
    (env.lookupVariable('v').constructor.prototype as { toString(): string }).toString = function (this: Runtime) {
      return this.type === 'BooleanValue' ? (this.value ? 'True' : 'False') : pyRepr(this);
    };
  }
  // |trim and |trim(chars): jinja2's do_trim is str.strip(chars).
  const iproto = Interpreter.prototype as unknown as {
    applyFilter: (o: Runtime, f: FilterNode, e: Environment) => Runtime;
    evaluateArguments: (a: unknown[], e: Environment) => [Runtime[], Map<string, Runtime>];
  };
  const applyFilter = iproto.applyFilter;
  iproto.applyFilter = function (this: typeof iproto, operand, node, env) {
    const name = node.type === 'Identifier' ? node.value : node.callee?.type === 'Identifier' ? node.callee.value : '';
    if (name === 'tojson' && hasPyNumber(operand))
      return pyToJson(operand, (o) => applyFilter.call(this, o, node, env));
    if (
      name === 'string' &&
      ['ArrayValue', 'TupleValue', 'ObjectValue', 'BooleanValue', 'NullValue'].includes(operand.type)
    )
      return str(pyRepr(operand));
    if ((name === 'selectattr' || name === 'rejectattr') && operand.type === 'ArrayValue')
      return selectAttr(this, operand, node, env, name === 'selectattr');
    if (operand.type === 'StringValue') {
      if (name === 'trim') {
        const [args, kw] = node.type === 'Identifier' ? [[], new Map()] : this.evaluateArguments(node.args ?? [], env);
        return str(pyStrip(operand.value as string, charsArg(args[0] ?? kw.get('chars'), 'trim')));
      }
      if (name === 'length' || name === 'count') return new IntegerValue(Array.from(operand.value as string).length);
    }
    return applyFilter.call(this, operand, node, env);
  };
}

/** Python's names of the template value types that `+` refuses to add to a str. */
const PY_TYPE: Record<string, string> = {
  IntegerValue: 'int',
  FloatValue: 'float',
  BooleanValue: 'bool',
  ArrayValue: 'list',
  TupleValue: 'tuple',
  ObjectValue: 'dict',
  NullValue: 'NoneType',
};

/** Python's TypeError for `+` of a str and another type (the port concatenated: 'a' + 1 was 'a1'). */
function checkPlus(left: Runtime, right: Runtime): void {
  const leftStr = left.type === 'StringValue';
  if (leftStr === (right.type === 'StringValue')) return;
  const other = PY_TYPE[leftStr ? right.type : left.type];
  if (other === undefined) return; // an undefined operand: the port's own error
  if (leftStr) throw new Error(`TypeError: can only concatenate str (not "${other}") to str`);
  if (other === 'list' || other === 'tuple')
    throw new Error(`TypeError: can only concatenate ${other} (not "str") to ${other}`);
  throw new Error(`TypeError: unsupported operand type(s) for +: '${other}' and 'str'`);
}

/**
 * `+` checks its operands' types as Python does (`~` still joins anything). Each operand is evaluated once: the
 * port's own `+` then gets them as already-evaluated nodes, which evaluate() hands back as they are.
 */
function installPlusTypeCheck(): void {
  type Node = { type: string; value?: unknown; operator?: { value: string }; left?: Node; right?: Node };
  const done = '\0evaluated';
  const proto = Interpreter.prototype as unknown as {
    evaluate(n: Node, e: Environment): Runtime;
    evaluateBinaryExpression(n: Node, e: Environment): Runtime;
  };
  const { evaluate, evaluateBinaryExpression: binary } = proto;
  proto.evaluate = function (n, e) {
    return n?.type === done ? (n.value as Runtime) : evaluate.call(this, n, e);
  };
  proto.evaluateBinaryExpression = function (n, e) {
    if (n.operator?.value !== '+') return binary.call(this, n, e);
    const left = this.evaluate(n.left!, e);
    const right = this.evaluate(n.right!, e);
    checkPlus(left, right);
    return binary.call(this, { ...n, left: { type: done, value: left }, right: { type: done, value: right } }, e);
  };
}

/**
 * jinja2's selectattr / rejectattr: the test (or truthiness) applied to each item's attribute, an undefined one
 * included (`selectattr("tool_calls", "undefined")` keeps the messages without tool_calls; the port drops every
 * item whose attribute is missing before testing it).
 */
function selectAttr(
  interp: { evaluateArguments: (a: unknown[], e: Environment) => [Runtime[], Map<string, Runtime>] },
  operand: Runtime,
  node: FilterNode,
  env: Environment,
  select: boolean,
): Runtime {
  const [[attr, testName, ...args]] = interp.evaluateArguments(node.args ?? [], env);
  if (attr?.type !== 'StringValue') throw new Error(`attribute name of selectattr / rejectattr must be a string`);
  const tests = (env as unknown as { tests: Map<string, (...x: Runtime[]) => boolean> }).tests;
  const test = testName ? tests.get(testName.value as string) : (x: Runtime) => truthy(x);
  if (!test) throw new Error(`Unknown test: ${testName!.value}`);
  const missing = env.lookupVariable('\0 an undefined name') as unknown as Runtime;
  const items = (operand.value as Runtime[]).filter((item) => {
    const value =
      item.value instanceof Map ? ((item.value.get(attr.value) as Runtime | undefined) ?? missing) : missing;
    return Boolean(test(value, ...args)) === select;
  });
  return new (arrayClass())(items);
}

/** A template value's truth as Python's bool(): undefined, none, 0, '' and empty containers are false. */
function truthy(v: Runtime): boolean {
  return (v as unknown as { __bool__(): { value: boolean } }).__bool__().value;
}

/** Python's repr() of a template value: 'str' (quotes and escapes as Python), [list], (tuple,), {'dict': ...}. */
function pyRepr(v: Runtime): string {
  switch (v.type) {
    case 'StringValue':
      return pyStrRepr(v.value as string);
    case 'NullValue':
    case 'UndefinedValue':
      return 'None';
    case 'BooleanValue':
      return v.value ? 'True' : 'False';
    case 'ArrayValue':
      return `[${(v.value as Runtime[]).map(pyRepr).join(', ')}]`;
    case 'TupleValue': {
      const xs = (v.value as Runtime[]).map(pyRepr);
      return `(${xs.join(', ')}${xs.length === 1 ? ',' : ''})`;
    }
    case 'ObjectValue':
    case 'KeywordArgumentsValue':
      return `{${[...(v.value as Map<string, Runtime>)].map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
    default:
      return String(v);
  }
}

/** Python's str repr: single quotes unless the text has ' and no "; non-printable characters escaped. */
function pyStrRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === q || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch !== ' ' && /[\p{C}\p{Z}]/u.test(ch)) {
      out +=
        c < 0x100
          ? `\\x${c.toString(16).padStart(2, '0')}`
          : c < 0x10000
            ? `\\u${c.toString(16).padStart(4, '0')}`
            : `\\U${c.toString(16).padStart(8, '0')}`;
    } else out += ch;
  }
  return out + q;
}

interface FilterNode {
  type: string;
  value?: string;
  callee?: { type: string; value: string };
  args?: unknown[];
}

/** The port's ArrayValue class (what split returns), found once through the Environment. */
let ArrayValueClass: RuntimeClass | undefined;
function arrayClass(): RuntimeClass {
  if (!ArrayValueClass) {
    const env = new Environment();
    env.set('a', []);
    ArrayValueClass = (env.lookupVariable('a') as unknown as { constructor: RuntimeClass }).constructor;
  }
  return ArrayValueClass;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** Python's datetime.strftime for the directives chat templates use (Llama 3.x: "%d %b %Y"), local time. */
function pyStrftime(d: Date, fmt: string): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const map: Record<string, () => string> = {
    d: () => p2(d.getDate()),
    m: () => p2(d.getMonth() + 1),
    Y: () => String(d.getFullYear()),
    y: () => p2(d.getFullYear() % 100),
    b: () => MONTHS[d.getMonth()].slice(0, 3),
    B: () => MONTHS[d.getMonth()],
    a: () => DAYS[d.getDay()].slice(0, 3),
    A: () => DAYS[d.getDay()],
    H: () => p2(d.getHours()),
    I: () => p2(d.getHours() % 12 || 12),
    M: () => p2(d.getMinutes()),
    S: () => p2(d.getSeconds()),
    p: () => (d.getHours() < 12 ? 'AM' : 'PM'),
    j: () =>
      String(
        Math.floor((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) - Date.UTC(d.getFullYear(), 0, 0)) / 864e5),
      ).padStart(3, '0'),
    '%': () => '%',
  };
  return fmt.replace(/%(.)/g, (all, c: string) => {
    const f = map[c];
    if (!f) throw new Error(`strftime_now: directive ${all} is not supported`);
    return f();
  });
}

/** Python's range(stop) / range(start, stop[, step]). */
function pyRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('ValueError: range() arg 3 must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

/** Thrown by the template's raise_exception (transformers: jinja2 TemplateError(message)). */
class TemplateRaise extends Error {}

/**
 * Render a parsed template in transformers' environment: jinja2's constants and range, raise_exception,
 * strftime_now reading `now()`, then the caller's variables (Template.render would refuse to redefine globals).
 */
export function renderTemplate(tpl: { parsed: unknown }, vars: Record<string, unknown>, now: () => Date): string {
  installPythonStringSemantics();
  const env = new Environment();
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    range: pyRange,
    raise_exception: (msg: unknown) => {
      throw new TemplateRaise(String(msg));
    },
    strftime_now: (fmt: unknown) => pyStrftime(now(), String(fmt)),
  };
  for (const [k, v] of Object.entries({ ...globals, ...vars }))
    if (hasPyNumber(v)) env.setVariable(k, toRuntime(v));
    else env.set(k, v);
  return (new Interpreter(env).run(tpl.parsed as never) as { value: string }).value;
}
