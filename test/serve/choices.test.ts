// `n` and `echo` as OpenAI defines them: n choices per prompt (index = prompt index * n + k), each sampled with its
// own randomness (reproducible with a seed), prompt tokens counted once per prompt; echo (completions only) starts
// each choice's text with its prompt. Streamed and not, through the official openai client.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { loadChatTokenizer } from '../../src/data/tokenizer.ts';
import { makeFixture, type Fixture } from '../train/fixture.ts';
import { postJson, startDeployment, type ServerProcess } from './server_process.ts';

const BASE = 'accounts/local/models/tiny';
const TEXTS = ['The capital of France is', 'Two plus two'];
const CHAT = [{ role: 'user' as const, content: 'Name a city in France.' }];

let fx: Fixture;
let srv: ServerProcess;
let client: OpenAI;

beforeAll(async () => {
  fx = makeFixture(4, 3);
  ({ srv, client } = await startDeployment(fx.model, BASE, 'choices'));
});

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(`server output:\n${srv?.output()}`);
});

afterAll(async () => {
  await srv?.stop();
});

/** POST to the server's path `p`. */
const post = (p: string, body: unknown) => postJson(`${srv.url}${p}`, body);

type CompletionBody = Omit<OpenAI.CompletionCreateParamsNonStreaming, 'model'>;

/** A non-streamed completion: [index, text, finish_reason] of each choice, and usage. */
async function completion(body: CompletionBody) {
  const c = await client.completions.create({ model: BASE, ...body });
  return { choices: c.choices.map((x) => [x.index, x.text, x.finish_reason]), usage: c.usage! };
}

/** The same request streamed: each index's text and finish reason put together from its chunks, and usage. */
async function streamed(body: CompletionBody) {
  const got = new Map<number, [string, string | null]>();
  let usage: OpenAI.CompletionUsage | undefined;
  const s = await client.completions.create({
    model: BASE,
    ...body,
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const ch of s) {
    for (const c of ch.choices) {
      const [text, finish] = got.get(c.index) ?? ['', null];
      got.set(c.index, [text + c.text, c.finish_reason ?? finish]);
    }
    usage = ch.usage ?? usage;
  }
  const choices = [...got.entries()].sort((a, b) => a[0] - b[0]).map(([i, [t, f]]) => [i, t, f]);
  return { choices, usage: usage! };
}

const texts = (r: { choices: unknown[][] }) => r.choices.map((c) => c[1] as string);

describe('n: several choices per prompt (real server process, official openai client)', () => {
  it('greedy: n identical choices, indexes 0..n-1; prompt tokens once, completion tokens summed', async () => {
    const one = await completion({ prompt: TEXTS[0], temperature: 0, max_tokens: 6 });
    const three = await completion({ prompt: TEXTS[0], temperature: 0, max_tokens: 6, n: 3 });
    expect(three.choices).toEqual([0, 1, 2].map((i) => [i, ...one.choices[0].slice(1)]));
    const { prompt_tokens, completion_tokens } = one.usage;
    expect(three.usage).toEqual({
      prompt_tokens,
      completion_tokens: 3 * completion_tokens,
      total_tokens: prompt_tokens + 3 * completion_tokens,
    });
  });

  it('sampled with a seed: the choices differ, the same request gives the same ones, streamed too', async () => {
    const body = { prompt: TEXTS[0], temperature: 1, max_tokens: 4, n: 3, seed: 7 };
    const a = await completion(body);
    expect(a.choices.map((c) => c[0])).toEqual([0, 1, 2]);
    expect(new Set(texts(a)).size).toBe(3);
    expect(await completion(body)).toEqual(a);
    expect(await streamed(body)).toEqual(a);
    // Choice 0 is what n = 1 gives with that seed; another seed gives other choices.
    expect(texts(await completion({ ...body, n: 1 }))).toEqual([texts(a)[0]]);
    expect(texts(await completion({ ...body, seed: 8 }))).not.toEqual(texts(a));
  });

  it('several prompts: choice index = prompt index * n + k; usage counts each prompt once', async () => {
    const alone = await Promise.all(TEXTS.map((prompt) => completion({ prompt, temperature: 0, max_tokens: 6 })));
    const both = await completion({ prompt: TEXTS, temperature: 0, max_tokens: 6, n: 2 });
    expect(both.choices).toEqual([0, 0, 1, 1].map((p, i) => [i, ...alone[p].choices[0].slice(1)]));
    const sum = (k: 'prompt_tokens' | 'completion_tokens') => alone[0].usage[k] + alone[1].usage[k];
    expect(both.usage).toEqual({
      prompt_tokens: sum('prompt_tokens'),
      completion_tokens: 2 * sum('completion_tokens'),
      total_tokens: sum('prompt_tokens') + 2 * sum('completion_tokens'),
    });
    expect(await streamed({ prompt: TEXTS, temperature: 0, max_tokens: 6, n: 2 })).toEqual(both);
  });

  it('chat: n messages, sampled apart with a seed, reproducible, streamed by index', async () => {
    const greedy = await client.chat.completions.create({ model: BASE, messages: CHAT, temperature: 0, max_tokens: 6 });
    const g3 = await client.chat.completions.create({
      model: BASE,
      messages: CHAT,
      temperature: 0,
      max_tokens: 6,
      n: 3,
    });
    expect(g3.choices.map((c) => [c.index, c.message.content])).toEqual(
      [0, 1, 2].map((i) => [i, greedy.choices[0].message.content]),
    );
    expect(g3.usage!.prompt_tokens).toBe(greedy.usage!.prompt_tokens);
    expect(g3.usage!.completion_tokens).toBe(3 * greedy.usage!.completion_tokens);

    const body = { model: BASE, messages: CHAT, temperature: 1, max_tokens: 4, n: 3, seed: 11 };
    const a = await client.chat.completions.create(body);
    const contents = a.choices.map((c) => c.message.content);
    expect(a.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(new Set(contents).size).toBe(3);
    const again = await client.chat.completions.create(body);
    expect(again.choices.map((c) => c.message.content)).toEqual(contents);
    const parts = ['', '', ''];
    const roles: number[] = [];
    for await (const ch of await client.chat.completions.create({ ...body, stream: true }))
      for (const c of ch.choices) {
        if (c.delta.role) roles.push(c.index);
        parts[c.index] += c.delta.content ?? '';
      }
    expect(parts).toEqual(contents);
    expect(roles.sort()).toEqual([0, 1, 2]);
  });

  it('n out of range is a 400 naming n', async () => {
    for (const [path, extra] of [
      ['/completions', { prompt: 'x' }],
      ['/chat/completions', { messages: CHAT }],
    ] as const)
      for (const n of [0, 17, 1.5, '2'] as unknown[]) {
        const r = await post(`/inference/v1${path}`, { model: BASE, max_tokens: 2, n, ...extra });
        expect({ path, n, status: r.status }).toEqual({ path, n, status: 400 });
        expect(r.json.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_value', param: 'n' });
        expect(r.json.error.message).toMatch(/from 1 to 16/);
      }
  });
});

describe('echo: the prompt before each completion (completions only)', () => {
  it('a text prompt: its text, then the completion; with n and several prompts, each choice its prompt', async () => {
    const plain = await completion({ prompt: TEXTS, temperature: 0, max_tokens: 6 });
    const echoed = await completion({ prompt: TEXTS, temperature: 0, max_tokens: 6, echo: true });
    expect(echoed.choices).toEqual(plain.choices.map(([i, t, f]) => [i, TEXTS[i as number] + t, f]));
    expect(echoed.usage).toEqual(plain.usage);
    expect(await streamed({ prompt: TEXTS, temperature: 0, max_tokens: 6, echo: true })).toEqual(echoed);
    const n2 = await completion({ prompt: TEXTS, temperature: 0, max_tokens: 6, echo: true, n: 2 });
    expect(texts(n2)).toEqual([0, 0, 1, 1].map((p) => texts(echoed)[p]));
  });

  it('a token-array prompt: the decoded prompt, then the completion', async () => {
    const tok = await loadChatTokenizer(fx.model);
    const ids = tok.encode(TEXTS[1]);
    const plain = await completion({ prompt: ids, temperature: 0, max_tokens: 6 });
    const echoed = await completion({ prompt: ids, temperature: 0, max_tokens: 6, echo: true });
    expect(texts(echoed)).toEqual([tok.decode(ids) + texts(plain)[0]]);
    expect(await streamed({ prompt: ids, temperature: 0, max_tokens: 6, echo: true })).toEqual(echoed);
  });

  it('max_tokens 0 with echo: the prompt alone, no completion tokens', async () => {
    const r = await completion({ prompt: TEXTS, max_tokens: 0, echo: true });
    expect(r.choices).toEqual(TEXTS.map((t, i) => [i, t, 'length']));
    const { prompt_tokens } = (await completion({ prompt: TEXTS, temperature: 0, max_tokens: 1 })).usage;
    expect(r.usage).toEqual({ prompt_tokens, completion_tokens: 0, total_tokens: prompt_tokens });
    expect(await streamed({ prompt: TEXTS, max_tokens: 0, echo: true })).toEqual(r);
  });

  it('refused where OpenAI refuses it: max_tokens 0 without echo, echo on chat, a non-boolean echo', async () => {
    const cases: Array<[string, unknown, string, string]> = [
      ['/completions', { prompt: 'x', max_tokens: 0 }, 'invalid_value', 'max_tokens'],
      ['/completions', { prompt: 'x', echo: 'yes' }, 'invalid_value', 'echo'],
      ['/chat/completions', { messages: CHAT, echo: true }, 'unsupported_value', 'echo'],
      ['/chat/completions', { messages: CHAT, max_tokens: 0, echo: false }, 'invalid_value', 'max_tokens'],
    ];
    for (const [path, body, code, param] of cases) {
      const r = await post(`/inference/v1${path}`, { model: BASE, ...(body as object) });
      expect({ body, status: r.status }).toEqual({ body, status: 400 });
      expect(r.json.error).toMatchObject({ type: 'invalid_request_error', code, param });
    }
  });
});
