// Schema check of one parsed JSONL row against the managed-job dataset rules
// (OpenAI chat format: messages, roles, content, message weight 0/1, root weight, tools, tool_calls,
// reasoning_content). Returns the normalised example or every problem found in the row.
import type { ChatMessage, DatasetExample, Role, ToolCall } from './types.ts';

const ROLES: readonly Role[] = ['system', 'user', 'assistant', 'tool'];

export interface RowResult {
  example?: DatasetExample;
  /** Row-level problems (without the `FILE:LINE:` prefix). */
  problems: string[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const kind = (v: unknown): string =>
  v === undefined
    ? 'nothing (missing)'
    : v === null
      ? 'null'
      : Array.isArray(v)
        ? 'an array'
        : typeof v === 'object'
          ? 'an object'
          : `a ${typeof v}`;

/** `content`: a string, or a list of text parts `{type: 'text', text}` that are concatenated. */
function readContent(v: unknown, where: string, problems: string[]): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    let text = '';
    v.forEach((part, i) => {
      if (isObj(part) && part.type === 'text' && typeof part.text !== 'string') {
        problems.push(`${where}.content[${i}].text must be a string, got ${kind(part.text)}`);
      } else if (!isObj(part) || part.type !== 'text') {
        const t = isObj(part) ? `type '${String(part.type)}'` : kind(part);
        problems.push(
          `${where}.content[${i}]: only text parts {"type": "text", "text": "..."} are supported, got ${t}`,
        );
      } else text += part.text;
    });
    return text;
  }
  problems.push(`${where}.content must be a string or a list of text parts, got ${kind(v)}`);
  return undefined;
}

function readToolCalls(v: unknown, where: string, problems: string[]): ToolCall[] | undefined {
  if (!Array.isArray(v) || v.length === 0) {
    problems.push(
      `${where}.tool_calls must be a non-empty array, got ${Array.isArray(v) ? 'an empty array' : kind(v)}`,
    );
    return undefined;
  }
  const out: ToolCall[] = [];
  v.forEach((c, i) => {
    const w = `${where}.tool_calls[${i}]`;
    if (!isObj(c)) return void problems.push(`${w} must be an object, got ${kind(c)}`);
    if (c.type !== undefined && c.type !== 'function')
      problems.push(`${w}.type must be "function", got ${JSON.stringify(c.type)}`);
    if (c.id !== undefined && typeof c.id !== 'string') problems.push(`${w}.id must be a string, got ${kind(c.id)}`);
    const f = c.function;
    if (f === undefined) return void problems.push(`${w}.function is missing (expected {"name", "arguments"})`);
    if (!isObj(f)) return void problems.push(`${w}.function must be an object {"name", "arguments"}, got ${kind(f)}`);
    if (typeof f.name !== 'string' || f.name === '') problems.push(`${w}.function.name must be a non-empty string`);
    const a = f.arguments;
    if (typeof a === 'string') {
      try {
        JSON.parse(a);
      } catch {
        problems.push(`${w}.function.arguments is a string but not valid JSON: ${JSON.stringify(a.slice(0, 60))}`);
      }
    } else if (!isObj(a)) problems.push(`${w}.function.arguments must be a JSON string or an object, got ${kind(a)}`);
    const call: ToolCall = {
      type: 'function',
      function: { name: String(f.name), arguments: a as string | Record<string, unknown> },
    };
    if (typeof c.id === 'string') call.id = c.id;
    out.push(call);
  });
  return out;
}

/** A row's root `tools`, as the chat template gets them; each problem is pushed onto `problems`. */
export function readTools(v: unknown, problems: string[]): unknown[] | undefined {
  if (!Array.isArray(v))
    return void problems.push(`tools must be an array of {"type": "function", "function": {...}}, got ${kind(v)}`);
  v.forEach((t, i) => {
    if (!isObj(t)) return void problems.push(`tools[${i}] must be an object, got ${kind(t)}`);
    if (t.type !== 'function') problems.push(`tools[${i}].type must be "function", got ${JSON.stringify(t.type)}`);
    const f = t.function;
    if (!isObj(f) || typeof f.name !== 'string' || f.name === '')
      problems.push(`tools[${i}].function must be an object with a non-empty string "name"`);
  });
  return v;
}

function readMessage(
  m: unknown,
  i: number,
  prev: ChatMessage | undefined,
  problems: string[],
): ChatMessage | undefined {
  const where = `messages[${i}]`;
  if (!isObj(m)) return void problems.push(`${where} must be an object with "role" and "content", got ${kind(m)}`);
  const before = problems.length;
  const role = m.role as Role;
  if (typeof m.role !== 'string') problems.push(`${where}.role must be a string, got ${kind(m.role)}`);
  else if (!ROLES.includes(role))
    problems.push(`${where}: unknown role '${m.role}' (expected system, user, assistant or tool)`);
  else if (role === 'system' && i !== 0)
    problems.push(`${where}: a system message is only allowed as the first message`);
  else if (role === 'tool' && prev?.role !== 'tool' && !(prev?.role === 'assistant' && prev.tool_calls)) {
    problems.push(
      `${where}: a tool message must follow an assistant message with tool_calls (or another tool message)`,
    );
  }
  const msg: ChatMessage = { role, content: '' };
  if (m.tool_calls !== undefined && m.tool_calls !== null) {
    if (role !== 'assistant') problems.push(`${where}: tool_calls are only allowed on assistant messages`);
    else msg.tool_calls = readToolCalls(m.tool_calls, where, problems);
  }
  if (m.content === undefined || m.content === null) {
    if (!(role === 'assistant' && msg.tool_calls))
      problems.push(
        `${where}.content is ${m.content === null ? 'null' : 'missing'} (only an assistant message with tool_calls may omit it)`,
      );
  } else msg.content = readContent(m.content, where, problems) ?? '';
  if (m.weight !== undefined) {
    if (m.weight === 0 || m.weight === 1) msg.weight = m.weight;
    else problems.push(`${where}.weight must be 0 or 1, got ${JSON.stringify(m.weight)}`);
  }
  if (m.reasoning_content !== undefined && m.reasoning_content !== null) {
    if (role !== 'assistant') problems.push(`${where}: reasoning_content is only allowed on assistant messages`);
    else if (typeof m.reasoning_content !== 'string')
      problems.push(`${where}.reasoning_content must be a string, got ${kind(m.reasoning_content)}`);
    else msg.reasoning_content = m.reasoning_content;
  }
  for (const key of ['tool_call_id', 'name'] as const) {
    if (m[key] === undefined || m[key] === null) continue;
    if (typeof m[key] !== 'string') problems.push(`${where}.${key} must be a string, got ${kind(m[key])}`);
    else msg[key] = m[key] as string;
  }
  return problems.length === before ? msg : undefined;
}

/** Check one parsed row. `line` is the 1-based source line. */
export function checkRow(value: unknown, line: number): RowResult {
  const problems: string[] = [];
  if (!isObj(value))
    return { problems: [`each line must be a JSON object with a "messages" array, got ${kind(value)}`] };
  const ex: DatasetExample = { line, messages: [] };
  if (value.weight !== undefined) {
    if (typeof value.weight !== 'number') problems.push(`root weight must be a number, got ${kind(value.weight)}`);
    else if (!Number.isFinite(value.weight)) problems.push(`root weight must be a finite number, got ${value.weight}`);
    else ex.weight = value.weight;
  }
  if (value.tools !== undefined && value.tools !== null) ex.tools = readTools(value.tools, problems);
  const msgs = value.messages;
  if (msgs === undefined) problems.push(`missing "messages" array`);
  else if (!Array.isArray(msgs)) problems.push(`"messages" must be an array, got ${kind(msgs)}`);
  else if (msgs.length === 0) problems.push(`"messages" is empty`);
  else {
    const messages = checkMessages(msgs, problems);
    if (messages) ex.messages = messages;
    if (messages && !messages.some((m) => m.role === 'assistant' && m.weight !== 0)) {
      problems.push(`no trainable assistant message (there is none, or every one has weight 0)`);
    }
  }
  return problems.length ? { problems } : { example: ex, problems };
}

/**
 * A conversation's messages, each checked as in a dataset row (roles, system only first, tool turns, content,
 * weight, tool_calls, reasoning_content); undefined when any has a problem (each pushed onto `problems`).
 */
export function checkMessages(msgs: unknown[], problems: string[]): ChatMessage[] | undefined {
  const out: ChatMessage[] = [];
  let ok = true;
  msgs.forEach((m, i) => {
    // The message before, as given (even one with problems of its own): a tool message after an assistant message
    // with bad tool_calls is not a second problem.
    const prev = i > 0 && isObj(msgs[i - 1]) ? (msgs[i - 1] as ChatMessage) : undefined;
    const msg = readMessage(m, i, prev, problems);
    if (msg) out.push(msg);
    else ok = false;
  });
  return ok ? out : undefined;
}
