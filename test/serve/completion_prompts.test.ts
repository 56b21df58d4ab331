// The completions API's four prompt forms, as OpenAI takes them: a string, an array of strings, an array of token
// ids, an array of arrays of token ids. Several prompts give one choice each (index = prompt index), streamed and not.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { loadChatTokenizer } from '../../src/data/tokenizer.ts';
import { makeFixture, type Fixture } from '../train/fixture.ts';
import { postJson, startDeployment, type ServerProcess } from './server_process.ts';

const BASE = 'accounts/local/models/tiny';
const TEXTS = ['The capital of France is', 'Two plus two'];

let fx: Fixture;
let srv: ServerProcess;
let client: OpenAI;
/** The fixture model's vocabulary size V. */
let V: number;

beforeAll(async () => {
  fx = makeFixture(4, 3);
  V = JSON.parse(fs.readFileSync(path.join(fx.model, 'config.json'), 'utf8')).vocab_size;
  ({ srv, client } = await startDeployment(fx.model, BASE, 'prompts'));
});

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(`server output:\n${srv?.output()}`);
});

afterAll(async () => {
  await srv?.stop();
});

/** POST to the server's path `p`. */
const post = (p: string, body: unknown) => postJson(`${srv.url}${p}`, body);

/** Greedy completion of one prompt, alone: what each choice of a several-prompt request must equal. */
async function alone(prompt: string | number[]) {
  const c = await client.completions.create({ model: BASE, prompt, temperature: 0, max_tokens: 6 });
  expect(c.choices.length).toBe(1);
  return { text: c.choices[0].text, finish: c.choices[0].finish_reason, usage: c.usage! };
}

describe('completions: prompt as strings or token ids (real server process, official openai client)', () => {
  it('a token-array prompt is taken as its tokens: the same completion as its text', async () => {
    const tok = await loadChatTokenizer(fx.model);
    const ids = tok.encode(TEXTS[0]);
    const byText = await alone(TEXTS[0]);
    expect(byText.usage.prompt_tokens).toBe(ids.length); // no BOS is added to this model's text prompts
    const byIds = await alone(ids);
    expect(byIds).toEqual(byText);
    let streamed = '';
    for await (const ch of await client.completions.create({
      model: BASE,
      prompt: ids,
      temperature: 0,
      max_tokens: 6,
      stream: true,
    }))
      streamed += ch.choices[0]?.text ?? '';
    expect(streamed).toBe(byText.text);
  });

  it('two string prompts give two choices in prompt order, each as if alone; usage counts both', async () => {
    const want = [await alone(TEXTS[0]), await alone(TEXTS[1])];
    const both = await client.completions.create({ model: BASE, prompt: TEXTS, temperature: 0, max_tokens: 6 });
    expect(both.choices.map((c) => [c.index, c.text, c.finish_reason])).toEqual(
      want.map((w, i) => [i, w.text, w.finish]),
    );
    const sum = (k: 'prompt_tokens' | 'completion_tokens' | 'total_tokens') => want[0].usage[k] + want[1].usage[k];
    expect(both.usage).toEqual({
      prompt_tokens: sum('prompt_tokens'),
      completion_tokens: sum('completion_tokens'),
      total_tokens: sum('total_tokens'),
    });

    const texts = ['', ''];
    const finishes: Array<string | null> = [null, null];
    let usage: typeof both.usage;
    for await (const ch of await client.completions.create({
      model: BASE,
      prompt: TEXTS,
      temperature: 0,
      max_tokens: 6,
      stream: true,
      stream_options: { include_usage: true },
    })) {
      for (const c of ch.choices) {
        texts[c.index] += c.text;
        finishes[c.index] = c.finish_reason ?? finishes[c.index];
      }
      usage = ch.usage ?? usage;
    }
    expect(texts).toEqual(want.map((w) => w.text));
    expect(finishes).toEqual(want.map((w) => w.finish));
    expect(usage).toEqual(both.usage);
  });

  it('an array of token arrays gives one choice per array', async () => {
    const tok = await loadChatTokenizer(fx.model);
    const ids = TEXTS.map((t) => tok.encode(t));
    const want = [await alone(ids[0]), await alone(ids[1])];
    const both = await client.completions.create({ model: BASE, prompt: ids, temperature: 0, max_tokens: 6 });
    expect(both.choices.map((c) => [c.index, c.text])).toEqual(want.map((w, i) => [i, w.text]));
    expect(both.usage!.prompt_tokens).toBe(ids[0].length + ids[1].length);
  });

  it('bad prompts are a 400 naming prompt, before any stream starts', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [[], /non-empty array/],
      [[1, 2.5], /prompt\[1\] = 2\.5 is not a token id/],
      [[1, -3], /prompt\[1\] = -3 is not a token id/],
      [[[1], [2, '3']], /prompt\[1\]\[1\] = "3" is not a token id/],
      [['a', 1], /not mixed/],
      [[[1], 2], /not mixed/],
      [[V], new RegExp(`token id ${V} at index 0 is not in the model's vocabulary \\[0, ${V}\\)`)],
      [
        [
          [1, 2],
          [3, V + 7],
        ],
        new RegExp(`^prompt\\[1\\]: token id ${V + 7} at index 1`),
      ],
      [[[]], /empty/],
      [{ text: 'x' }, /must be a string/],
    ];
    for (const [prompt, message] of cases)
      for (const stream of [false, true]) {
        const r = await post('/inference/v1/completions', { model: BASE, prompt, max_tokens: 2, stream });
        expect({ prompt, stream, status: r.status }).toEqual({ prompt, stream, status: 400 });
        expect(r.json.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_value', param: 'prompt' });
        expect(r.json.error.message).toMatch(message);
      }
    // The last id of the vocabulary is a valid prompt.
    expect((await alone([V - 1])).usage.prompt_tokens).toBe(1);
  });
});
