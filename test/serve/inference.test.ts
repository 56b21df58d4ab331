import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { initBackend } from '../../src/backend/index.ts';
import { loadChatTokenizer } from '../../src/data/tokenizer.ts';
import { loadBaseModel, type BaseModel } from '../../src/model/model.ts';
import { loraFromTensors } from '../../src/model/lora.ts';
import { loadAdapter } from '../../src/model/peft.ts';
import { generate } from '../../src/infer/generate.ts';
import { makeInferFixture, type InferFixture } from '../infer/fixture.ts';
import { randomAdapter } from '../train/fixture.ts';
import { startInferenceServer, until, type ServerProcess } from './server_process.ts';

const BASE = 'accounts/local/models/tiny';
const FT_A = 'accounts/local/models/ft-a';
const FT_B = 'accounts/local/models/ft-b';
const FT_C = 'accounts/local/models/ft-c';
const API = '/v1/accounts/local';

let fx: InferFixture;
let srv: ServerProcess;
let client: OpenAI;
let base: BaseModel;

beforeAll(async () => {
  fx = await makeInferFixture();
  const c = await randomAdapter(fx, 'adapter-c', 9);
  srv = await startInferenceServer([
    '--base',
    `${BASE}=${fx.model}`,
    '--adapter',
    `${FT_A}=${BASE}:${fx.adapters[0]}`,
    '--adapter',
    `${FT_B}=${BASE}:${fx.adapters[1]}`,
    '--adapter',
    `${FT_C}=${BASE}:${c}`,
  ]);
  client = new OpenAI({ baseURL: `${srv.url}/inference/v1`, apiKey: 'unused', timeout: 120_000, maxRetries: 0 });
  await initBackend({});
  base = await loadBaseModel(fx.model);
});

afterEach((ctx) => {
  // A failing test shows what the server printed (a crash, a stack).
  if (ctx.task.result?.state === 'fail') console.error(`server output:\n${srv?.output()}`);
});

afterAll(async () => {
  await srv?.stop();
});

/** The JSON bodies these tests read: loose on purpose (each test checks the fields it needs). */
interface ApiJson {
  state?: string;
  error: { code: string | number; message: string; status?: string; type?: string; param?: string };
  deployedModels: { model: string; name: string }[];
  deployments: { name: string }[];
  [field: string]: unknown;
}

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: ApiJson }> {
  const r = await fetch(`${srv.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

/** `lorasft generate`'s greedy text for one user message, with adapter dir `adapter` (or none). */
async function reference(content: string, adapter: string | null, maxNewTokens: number): Promise<string> {
  const tok = await loadChatTokenizer(fx.model);
  const a = adapter ? loadAdapter(adapter) : null;
  const lora = a ? loraFromTensors(base, a.lora, a.cfg, adapter!) : null;
  const g = generate(base, lora, tok, [{ role: 'user', content }], { maxNewTokens, temperature: 0, topP: 1, seed: 0 });
  lora?.dispose();
  return g.text;
}

async function waitReady(id: string): Promise<ApiJson> {
  return until(async () => {
    const r = await call('GET', `${API}/deployments/${id}`);
    if (r.json.state === 'FAILED') throw new Error(JSON.stringify(r.json));
    return r.json.state === 'READY' ? r.json : undefined;
  });
}

describe('deployments and the OpenAI-compatible API (real server process, official openai client)', () => {
  it('deploys a fine-tuned model and a multi-LoRA base deployment, with REST errors in the service shape', async () => {
    const created = await call('POST', `${API}/deployments?deploymentId=ft-a-dep`, { baseModel: FT_A });
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject({
      name: 'accounts/local/deployments/ft-a-dep',
      baseModel: FT_A,
      state: 'CREATING',
    });
    expect(
      (await call('POST', `${API}/deployments?deploymentId=multi`, { baseModel: BASE, enableAddons: true })).status,
    ).toBe(200);
    await waitReady('ft-a-dep');
    await waitReady('multi');
    const loaded = await call('POST', `${API}/deployedModels`, {
      model: FT_B,
      deployment: 'accounts/local/deployments/multi',
    });
    expect(loaded.status).toBe(200);
    expect(loaded.json).toMatchObject({
      model: FT_B,
      deployment: 'accounts/local/deployments/multi',
      state: 'DEPLOYED',
    });
    expect((await call('GET', `${API}/deployedModels`)).json.deployedModels.map((d) => d.model).sort()).toEqual([
      FT_A,
      FT_B,
    ]);
    expect((await call('GET', `${API}/deployments`)).json.deployments.map((d) => d.name).sort()).toEqual([
      'accounts/local/deployments/ft-a-dep',
      'accounts/local/deployments/multi',
    ]);
    // Paged as the other lists: one per page, the token continues, the last page has no token.
    const first = (await call('GET', `${API}/deployments?pageSize=1`)).json;
    expect([first.deployments.length, first.totalSize]).toEqual([1, 2]);
    const second = (await call('GET', `${API}/deployments?pageSize=1&pageToken=${first.nextPageToken}`)).json;
    expect([second.deployments.length, second.nextPageToken]).toEqual([1, '']);
    expect([first.deployments[0].name, second.deployments[0].name].sort()).toEqual([
      'accounts/local/deployments/ft-a-dep',
      'accounts/local/deployments/multi',
    ]);

    const errors: Array<[string, string, unknown, number, string]> = [
      ['GET', `${API}/deployments?pageToken=garbage`, undefined, 400, 'INVALID_ARGUMENT'],
      ['GET', `${API}/deployedModels?bogus=1`, undefined, 400, 'INVALID_ARGUMENT'],
      ['POST', `${API}/deployments`, { baseModel: FT_A, minReplicaCount: 'lots' }, 400, 'INVALID_ARGUMENT'],
      ['POST', `${API}/deployedModels`, { model: FT_C, deployment: 'multi', public: 'yes' }, 400, 'INVALID_ARGUMENT'],
      ['POST', `${API}/deployments?deploymentId=Bad_Id`, { baseModel: FT_A }, 400, 'INVALID_ARGUMENT'],
      ['POST', `${API}/deployments?deploymentId=multi`, { baseModel: BASE }, 409, 'ALREADY_EXISTS'],
      ['POST', `${API}/deployments`, { baseModel: 'accounts/local/models/nope' }, 400, 'INVALID_ARGUMENT'],
      ['POST', `${API}/deployments`, { baseModel: FT_A, gpus: 8 }, 400, 'INVALID_ARGUMENT'],
      ['POST', `${API}/deployments`, '{not json', 400, 'INVALID_ARGUMENT'],
      ['POST', `${API}/deployments?color=red`, { baseModel: FT_A }, 400, 'INVALID_ARGUMENT'],
      ['GET', `${API}/deployments/missing`, undefined, 404, 'NOT_FOUND'],
      ['DELETE', `${API}/deployments/missing`, undefined, 404, 'NOT_FOUND'],
      ['POST', `${API}/deployedModels`, { model: BASE, deployment: 'multi' }, 400, 'INVALID_ARGUMENT'],
      ['POST', `${API}/deployedModels`, { model: FT_B, deployment: 'multi' }, 409, 'ALREADY_EXISTS'],
      ['POST', `${API}/deployedModels`, { model: FT_C, deployment: 'nowhere' }, 404, 'NOT_FOUND'],
      ['POST', `${API}/deployedModels`, { model: FT_C, deployment: 'ft-a-dep' }, 400, 'INVALID_ARGUMENT'], // no addons
      ['GET', `${API}/deployedModels/missing`, undefined, 404, 'NOT_FOUND'],
      ['PUT', `${API}/deployments/multi`, {}, 405, 'UNIMPLEMENTED'],
      ['GET', `${API}/gadgets`, undefined, 404, 'NOT_FOUND'],
    ];
    for (const [method, path, body, status, name] of errors) {
      const r = await call(method, path, body);
      expect({ path, status: r.status }).toEqual({ path, status });
      expect(r.json.error).toMatchObject({ code: status, status: name });
      expect(typeof r.json.error.message).toBe('string');
    }
  });

  it('chat/completions and completions, streaming and not: greedy output equals lorasft generate', async () => {
    const messages = [{ role: 'user' as const, content: 'What is 2 plus 3?' }];
    const want = await reference(messages[0].content, fx.adapters[0], 10);
    const chat = await client.chat.completions.create({ model: FT_A, messages, temperature: 0, max_tokens: 10 });
    expect(chat.object).toBe('chat.completion');
    expect(chat.choices[0].message.content).toBe(want);
    expect(chat.choices[0].finish_reason).toMatch(/^(stop|length)$/);
    expect(chat.usage!.total_tokens).toBe(chat.usage!.prompt_tokens + chat.usage!.completion_tokens);

    const stream = await client.chat.completions.create({
      model: FT_A,
      messages,
      temperature: 0,
      max_tokens: 10,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: typeof chat.usage;
    for await (const ch of stream) {
      text += ch.choices[0]?.delta?.content ?? '';
      finish = ch.choices[0]?.finish_reason ?? finish;
      usage = ch.usage ?? usage;
    }
    expect(text).toBe(want);
    expect(finish).toBe(chat.choices[0].finish_reason);
    expect(usage).toEqual(chat.usage);

    // The LoRA loaded on the base deployment, routed with MODEL#DEPLOYMENT, and the base model itself.
    const wantB = await reference(messages[0].content, fx.adapters[1], 8);
    const viaHash = await client.chat.completions.create({
      model: `${FT_B}#accounts/local/deployments/multi`,
      messages,
      temperature: 0,
      max_tokens: 8,
    });
    expect(viaHash.choices[0].message.content).toBe(wantB);
    const plain = await client.chat.completions.create({ model: BASE, messages, temperature: 0, max_tokens: 8 });
    expect(plain.choices[0].message.content).toBe(await reference(messages[0].content, null, 8));

    const comp = await client.completions.create({
      model: FT_B,
      prompt: 'The capital of France is',
      temperature: 0,
      max_tokens: 6,
    });
    expect(comp.object).toBe('text_completion');
    expect(comp.usage!.completion_tokens).toBeLessThanOrEqual(6);
    let streamed = '';
    for await (const ch of await client.completions.create({
      model: FT_B,
      prompt: 'The capital of France is',
      temperature: 0,
      max_tokens: 6,
      stream: true,
    }))
      streamed += ch.choices[0]?.text ?? '';
    expect(streamed).toBe(comp.choices[0].text);

    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining([FT_A, FT_B, BASE, `${FT_B}#accounts/local/deployments/multi`]));
    expect(ids).not.toContain(FT_C);
    expect(await client.models.retrieve(FT_A)).toMatchObject({ id: FT_A, object: 'model', owned_by: 'local' });
    await expect(client.models.retrieve(FT_C)).rejects.toMatchObject({ status: 404 });
  });

  it('serves concurrent requests for different adapters, each as if alone', async () => {
    const prompts = ['Name a city.', 'Count to three.', 'Say hello.', 'What is water?'];
    const models = [FT_A, FT_B, BASE, FT_B];
    const dirs = [fx.adapters[0], fx.adapters[1], null, fx.adapters[1]];
    const got = await Promise.all(
      prompts.map((p, i) =>
        client.chat.completions.create({
          model: models[i],
          messages: [{ role: 'user', content: p }],
          temperature: 0,
          max_tokens: 8,
        }),
      ),
    );
    for (let i = 0; i < prompts.length; i++)
      expect(got[i].choices[0].message.content, prompts[i]).toBe(await reference(prompts[i], dirs[i], 8));
  });

  it('answers errors in the OpenAI shape: unknown model, undeployed model, bad parameters', async () => {
    const msg = [{ role: 'user', content: 'hi' }];
    const cases: Array<[string, unknown, number, string | null, string | null]> = [
      ['/chat/completions', { model: 'accounts/local/models/nope', messages: msg }, 404, 'model_not_found', 'model'],
      ['/chat/completions', { model: FT_C, messages: msg }, 404, 'model_not_deployed', 'model'],
      [
        '/chat/completions',
        { model: `${FT_A}#accounts/local/deployments/nope`, messages: msg },
        404,
        'deployment_not_found',
        'model',
      ],
      [
        '/chat/completions',
        { model: `${FT_A}#accounts/local/deployments/multi`, messages: msg },
        404,
        'model_not_deployed',
        'model',
      ],
      ['/chat/completions', { model: FT_A, messages: msg, temperature: 3 }, 400, 'invalid_value', 'temperature'],
      ['/chat/completions', { model: FT_A, messages: msg, top_p: 0 }, 400, 'invalid_value', 'top_p'],
      ['/chat/completions', { model: FT_A, messages: msg, max_tokens: 0 }, 400, 'invalid_value', 'max_tokens'],
      ['/chat/completions', { model: FT_A, messages: msg, n: 17 }, 400, 'invalid_value', 'n'],
      ['/chat/completions', { model: FT_A, messages: msg, stop: [1] }, 400, 'invalid_value', 'stop'],
      ['/chat/completions', { model: FT_A, messages: msg, seed: 1.5 }, 400, 'invalid_value', 'seed'],
      ['/chat/completions', { model: FT_A, messages: msg, bogus: 1 }, 400, 'unknown_parameter', 'bogus'],
      ['/chat/completions', { model: FT_A, messages: [] }, 400, 'invalid_value', 'messages'],
      [
        '/chat/completions',
        { model: FT_A, messages: [{ role: 'robot', content: 'x' }] },
        400,
        'invalid_value',
        'messages[0].role',
      ],
      ['/chat/completions', { messages: msg }, 400, 'invalid_value', 'model'],
      ['/chat/completions', '{"model":', 400, 'invalid_json', null],
      ['/completions', { model: FT_A, prompt: 5 }, 400, 'invalid_value', 'prompt'],
      ['/chat/completions', { model: FT_A, messages: msg, echo: true }, 400, 'unsupported_value', 'echo'],
      ['/embeddings', { model: FT_A, input: 'x' }, 404, 'unknown_url', null],
      // A prompt the model cannot take is refused before any stream starts (a 400, not an error event after a 200).
      ...[false, true].map((stream): [string, unknown, number, string, string] => [
        '/chat/completions',
        { model: FT_A, messages: [{ role: 'user', content: 'hello '.repeat(20000) }], stream },
        400,
        'context_length_exceeded',
        'messages',
      ]),
      ['/completions', { model: FT_A, prompt: '', stream: true }, 400, 'invalid_value', 'prompt'],
      [
        '/chat/completions',
        { model: FT_A, messages: msg, stream_options: { include_usage: true } },
        400,
        'invalid_value',
        'stream_options',
      ],
      [
        '/chat/completions',
        { model: FT_A, messages: msg, stream: true, stream_options: { include_usage: 'yes' } },
        400,
        'invalid_value',
        'stream_options',
      ],
    ];
    for (const [path, body, status, code, param] of cases) {
      const r = await call('POST', `/inference/v1${path}`, body);
      expect({ body, status: r.status }).toEqual({ body, status });
      expect(r.json.error).toMatchObject({ type: 'invalid_request_error', code, param });
      expect(r.json.error.message.length).toBeGreaterThan(0);
    }
    // GET models/MODEL#ID finds what chat/completions takes by that name.
    const byId = await call('GET', `/inference/v1/models/${encodeURIComponent(`${FT_B}#multi`)}`);
    expect([byId.status, byId.json.id]).toEqual([200, `${FT_B}#accounts/local/deployments/multi`]);
    // null is OpenAI's "default" for every optional parameter.
    const nulls = { n: null, presence_penalty: null, frequency_penalty: null, user: null, logprobs: null, echo: null };
    const ok = await call('POST', '/inference/v1/chat/completions', {
      model: FT_A,
      messages: msg,
      max_tokens: 2,
      ...nulls,
    });
    expect(ok.status, JSON.stringify(ok.json)).toBe(200);
    // A path with malformed percent-encoding is the caller's error (a 400), not the server's.
    for (const path of ['/inference/v1/models/%E0%A4%A', '/inference/v1/models/%', `${API}/deployments/%`]) {
      const r = await call('GET', path);
      expect({ path, status: r.status }).toEqual({ path, status: 400 });
      expect(r.json.error.message).toMatch(/malformed percent-encoding/);
    }
    // The openai client surfaces them as its own error classes.
    await expect(
      client.chat.completions.create({
        model: 'accounts/local/models/nope',
        messages: [{ role: 'user', content: 'hi' }],
      }),
    ).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
  });

  it('unloading a LoRA and deleting a deployment stop serving them', async () => {
    const list = (await call('GET', `${API}/deployedModels`)).json.deployedModels;
    const b = list.find((d) => d.model === FT_B)!;
    expect((await call('DELETE', `/${'v1'}/${b.name}`)).status).toBe(200);
    const r = await call('POST', '/inference/v1/chat/completions', {
      model: FT_B,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe('model_not_deployed');
    expect((await call('DELETE', `${API}/deployments/ft-a-dep`)).status).toBe(200);
    expect((await call('GET', `${API}/deployments/ft-a-dep`)).status).toBe(404);
    expect((await call('POST', '/inference/v1/completions', { model: FT_A, prompt: 'x' })).json.error.code).toBe(
      'model_not_deployed',
    );
  });
});
