// Request bodies of the OpenAI-compatible inference API, checked field by field: the supported sampling
// parameters with OpenAI's ranges and defaults, and a clear 400 (naming the parameter) for anything else.
import { randomInt } from 'node:crypto';
import type { ChatMessage } from '../data/types.ts';
import type { Prompt } from '../infer/deployment.ts';
import type { SamplingParams } from '../infer/sequence.ts';
import type { Json } from './store.ts';

/** A 400 in OpenAI's shape: `{"error": {"message", "type": "invalid_request_error", "param", "code"}}`. */
export class OpenAIError extends Error {
  constructor(
    readonly httpStatus: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type = httpStatus >= 500 ? 'server_error' : 'invalid_request_error',
  ) {
    super(message);
  }
  body(): Json {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

const bad = (param: string, message: string) => new OpenAIError(400, message, param, 'invalid_value');

/** Most choices per prompt (`n`). */
const MAX_N = 16;

export interface InferenceRequest {
  model: string;
  /** One for chat; the completions API takes several (`n` choices each). */
  prompts: Prompt[];
  params: SamplingParams;
  /** Choices per prompt, 1..MAX_N: choice prompt_index * n + k. */
  n: number;
  /** Completions only: each choice's text starts with its prompt's. */
  echo: boolean;
  stream: boolean;
  includeUsage: boolean;
}

/** Accepted when absent or at their no-op value; anything else is "not supported" rather than ignored. */
const NOOP: Record<string, (v: unknown) => boolean> = {
  frequency_penalty: (v) => v === 0,
  presence_penalty: (v) => v === 0,
  logprobs: (v) => v === false || v === null || v === 0,
  suffix: (v) => v === null,
  logit_bias: (v) => v === null || (typeof v === 'object' && Object.keys(v as object).length === 0),
  user: (v) => typeof v === 'string',
  parallel_tool_calls: () => true,
};
/** Chat has no `echo` (OpenAI's neither): false is taken as the no-op it is. */
const CHAT_NOOP: Record<string, (v: unknown) => boolean> = { ...NOOP, echo: (v) => v === false };
const COMMON = [
  'model',
  'n',
  'temperature',
  'top_p',
  'max_tokens',
  'stop',
  'seed',
  'stream',
  'stream_options',
  ...Object.keys(NOOP),
];
const CHAT_FIELDS = [...COMMON, 'echo', 'messages', 'max_completion_tokens'];
const COMPLETION_FIELDS = [...COMMON, 'echo', 'prompt'];

function number(body: Json, key: string, def: number, ok: (n: number) => boolean, range: string): number {
  const v = body[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
    throw bad(key, `${JSON.stringify(v)} is not valid for '${key}': expected ${range}`);
  return v;
}

function stopList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length > 4 || list.some((s) => typeof s !== 'string' || s === '')) {
    throw bad(
      'stop',
      `'stop' must be a non-empty string or an array of at most 4 non-empty strings, got ${JSON.stringify(v).slice(0, 120)}`,
    );
  }
  return list as string[];
}

function messages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0)
    throw bad('messages', "'messages' must be a non-empty array of {role, content}");
  return v.map((m, i) => {
    const where = `messages[${i}]`;
    if (!m || typeof m !== 'object' || !['system', 'user', 'assistant', 'developer'].includes(m.role))
      throw bad(`${where}.role`, `${where}.role must be one of system, developer, user, assistant`);
    let content = m.content;
    // Content parts: only text parts can be read by a text model.
    if (Array.isArray(content)) {
      if (content.some((p) => !p || p.type !== 'text' || typeof p.text !== 'string'))
        throw bad(`${where}.content`, `${where}.content: only {"type": "text", "text": ...} parts are supported`);
      content = content.map((p: { text: string }) => p.text).join('');
    }
    if (typeof content !== 'string')
      throw bad(`${where}.content`, `${where}.content must be a string or an array of text parts`);
    return { role: m.role === 'developer' ? 'system' : m.role, content } as ChatMessage;
  });
}

const PROMPT_FORMS =
  "'prompt' must be a string, or a non-empty array of strings, of token ids, or of arrays of token ids";

/** OpenAI's four prompt forms: a string, strings, token ids, or arrays of token ids; one Prompt per prompt. */
function completionPrompts(v: unknown): Prompt[] {
  if (typeof v === 'string') return [{ text: v }];
  if (!Array.isArray(v) || v.length === 0)
    throw bad('prompt', `${PROMPT_FORMS}, got ${String(JSON.stringify(v)).slice(0, 120)}`);
  if (v.every((p) => typeof p === 'string')) return v.map((text: string) => ({ text }));
  if (v.every((p) => typeof p === 'number')) return [{ ids: tokenIds(v, 'prompt') }];
  if (v.every(Array.isArray)) return v.map((p: unknown[], i) => ({ ids: tokenIds(p, `prompt[${i}]`) }));
  throw bad('prompt', `${PROMPT_FORMS} (one form, not mixed)`);
}

/** Token ids must be integers here; their range is checked by the deployment, which knows the vocabulary. */
function tokenIds(v: unknown[], where: string): number[] {
  const i = v.findIndex((x) => !Number.isSafeInteger(x) || (x as number) < 0);
  if (i >= 0)
    throw bad('prompt', `${where}[${i}] = ${JSON.stringify(v[i])} is not a token id (a non-negative integer)`);
  return v as number[];
}

/** Parses a chat/completions (`chat`) or completions body; defaultMaxTokens applies when max_tokens is absent. */
export function parseInferenceRequest(body: Json, kind: 'chat' | 'completion'): InferenceRequest {
  const [known, noop] = kind === 'chat' ? [CHAT_FIELDS, CHAT_NOOP] : [COMPLETION_FIELDS, NOOP];
  for (const k of Object.keys(body)) {
    if (!known.includes(k))
      throw new OpenAIError(400, `Unrecognized request argument supplied: ${k}`, k, 'unknown_parameter');
    if (noop[k] && body[k] !== undefined && body[k] !== null && !noop[k](body[k]))
      // null: the default, as OpenAI's
      throw new OpenAIError(
        400,
        `'${k}' = ${JSON.stringify(body[k])} is not supported by this server`,
        k,
        'unsupported_value',
      );
  }
  if (typeof body.model !== 'string' || body.model === '')
    throw bad('model', "'model' is required: a model resource name, or MODEL#DEPLOYMENT");
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean')
    throw bad('stream', "'stream' must be a boolean");
  const so = body.stream_options as Json | undefined | null;
  if (so !== undefined && so !== null) {
    if (typeof so !== 'object' || Array.isArray(so) || Object.keys(so).some((k) => k !== 'include_usage'))
      throw bad('stream_options', "'stream_options' may only hold include_usage");
    if (so.include_usage !== undefined && so.include_usage !== null && typeof so.include_usage !== 'boolean')
      throw bad('stream_options', "'stream_options.include_usage' must be a boolean");
    if (body.stream !== true) throw bad('stream_options', "'stream_options' is only allowed when 'stream' is true");
  }
  if (body.echo !== undefined && body.echo !== null && typeof body.echo !== 'boolean')
    throw bad('echo', "'echo' must be a boolean");
  const echo = kind === 'completion' && body.echo === true;
  const maxKey = body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
  const params: SamplingParams = {
    temperature: number(body, 'temperature', 1, (n) => n >= 0 && n <= 2, 'a number from 0 to 2'),
    topP: number(body, 'top_p', 1, (n) => n > 0 && n <= 1, 'a number in (0, 1]'),
    maxTokens: number(
      body,
      maxKey,
      kind === 'chat' ? Number.MAX_SAFE_INTEGER : 16,
      // 0 with echo: the prompt alone, as OpenAI's (the way to read a prompt back).
      (n) => Number.isInteger(n) && n >= (echo ? 0 : 1),
      echo ? 'a non-negative integer' : 'a positive integer',
    ),
    seed: number(body, 'seed', randomInt(2 ** 31), (n) => Number.isSafeInteger(n), 'an integer'),
    stop: stopList(body.stop),
  };
  const prompts: Prompt[] = kind === 'chat' ? [{ messages: messages(body.messages) }] : completionPrompts(body.prompt);
  const n = number(body, 'n', 1, (v) => Number.isInteger(v) && v >= 1 && v <= MAX_N, `an integer from 1 to ${MAX_N}`);
  return {
    model: body.model,
    prompts,
    params,
    n,
    echo,
    stream: body.stream === true,
    includeUsage: so?.include_usage === true,
  };
}
