// Deployments on `lorasft serve`: a job's output model is deployed with `lorasft deployment` verbs (firectl's
// create / load-lora / unload-lora), queried with the official openai client, unloaded and deleted; deployments
// and their LoRA models outlive a killed server. Each deployment runs in its own process: the API answers while one
// is stopped mid-request, and one that is killed becomes FAILED while the server serves on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { makeFixture, type Fixture } from '../train/fixture.ts';
import { request, startServe, stopAllServers, waitFor, waitForJob, type Serve } from './helpers.ts';
import { BIN } from '../helpers/index.ts';

const run = promisify(execFile);
let fx: Fixture;
let srv: Serve;
let data: string;
const ARGS = ['--workers', '1', '--threads-per-job', '1', '--no-demo-model'];

beforeAll(async () => {
  fx = makeFixture();
  data = path.join(fx.root, 'data');
  await run(process.execPath, [BIN, 'model', 'import', 'accounts/local/models/tiny', fx.model, '--data-dir', data]);
  srv = await startServe(data, ARGS);
  await api('POST', 'datasets', { datasetId: 'd', dataset: { userUploaded: {} } });
  const up = await request(srv.url, 'POST', '/v1/accounts/local/datasets/d:upload', {
    headers: { 'content-type': 'multipart/form-data; boundary=b' },
    raw: `--b\r\nContent-Disposition: form-data; name="file"; filename="d.jsonl"\r\n\r\n${fs.readFileSync(fx.train, 'utf8')}\r\n--b--\r\n`,
  });
  expect(up.status, up.text).toBe(200);
  const job = await api('POST', 'supervisedFineTuningJobs?supervisedFineTuningJobId=j', {
    dataset: 'd',
    baseModel: 'tiny',
    outputModel: 'tiny-ft',
    maxSteps: 2,
    batchSize: 64,
    evalAutoCarveout: false,
  });
  expect(job.status, job.text).toBe(200);
  await waitForJob(srv.url, undefined, 'j', ['JOB_STATE_COMPLETED']);
});
afterAll(stopAllServers);

const api = (m: string, p: string, body?: unknown) => request(srv.url, m, `/v1/accounts/local/${p}`, { body });
const client = () =>
  new OpenAI({ baseURL: `${srv.url}/inference/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
/** Greedy chat answer of `model` to 'hi' (8 tokens). */
const answer = async (model: string) =>
  (
    await client().chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 8,
      temperature: 0,
    })
  ).choices[0].message.content;

const verb = async (...args: string[]) =>
  (await run(process.execPath, [BIN, 'deployment', ...args], { env: { ...process.env, LORASFT_API_BASE: srv.url } }))
    .stdout;

describe('lorasft deployment', () => {
  it('create --wait, load-lora, query with the openai client, unload-lora, delete', async () => {
    expect(await verb('create', 'tiny', '--deployment-id', 'base', '--wait')).toMatch(/READY/);
    expect(await verb('load-lora', 'tiny-ft', '--deployment', 'base')).toMatch(/DEPLOYED/);
    // unload-lora of a model not loaded there names the ones that are (no other verb lists them)
    await expect(verb('unload-lora', 'tiny', '--deployment', 'base')).rejects.toMatchObject({
      stderr: expect.stringContaining(
        'model accounts/local/models/tiny is not loaded on accounts/local/deployments/base (loaded there: accounts/local/models/tiny-ft)',
      ),
    });
    expect(await verb('list')).toMatch(/^base +accounts\/local\/models\/tiny +READY/m);
    const c = await client().chat.completions.create({
      model: 'accounts/local/models/tiny-ft',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
      temperature: 0,
    });
    expect(c.usage!.completion_tokens).toBeGreaterThan(0);
    // --help says which "model" a query takes: the full name, not the id the verbs also take.
    expect(await verb('--help')).toMatch(/"model": the model's full name, accounts\/ACCOUNT\/models\/ID \(an id alone/);
    await expect(
      client().chat.completions.create({
        model: 'tiny-ft',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 1,
      }),
    ).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    // A model a deployment serves (as its LoRA, or as the base of one) is not deleted under it.
    for (const m of ['tiny-ft', 'tiny']) {
      const del = await api('DELETE', `models/${m}`);
      expect([del.status, del.json.error?.message]).toEqual([
        409,
        `model accounts/local/models/${m} is served by 1 deployment(s): accounts/local/deployments/base (delete them first)`,
      ]);
    }
    expect(await verb('unload-lora', 'tiny-ft', '--deployment', 'base')).toMatch(/unloaded/);
    await expect(
      client().chat.completions.create({
        model: 'accounts/local/models/tiny-ft',
        messages: [{ role: 'user', content: 'hi' }],
      }),
    ).rejects.toMatchObject({ status: 404, code: 'model_not_deployed' });
    expect(await verb('delete', 'base')).toMatch(/deleted deployment base/);
    expect((await request(srv.url, 'GET', '/v1/accounts/local/deployments/base')).status).toBe(404);
  });
});

describe('deployments across a restart', () => {
  it('a killed server loads its deployments and their LoRA models again, under the same names', async () => {
    expect(await verb('create', 'tiny', '--deployment-id', 'keep', '--wait')).toMatch(/READY/);
    expect(await verb('load-lora', 'tiny-ft', '--deployment', 'keep')).toMatch(/DEPLOYED/);
    const before = {
      ft: await answer('accounts/local/models/tiny-ft'),
      base: await answer('accounts/local/models/tiny'),
    };
    const deployed = (await api('GET', 'deployedModels')).json.deployedModels;
    expect(deployed).toHaveLength(1);

    await srv.kill();
    srv = await startServe(data, ARGS);
    expect(srv.output()).toMatch(/loading 1 deployment\(s\) again/);
    // Asked at once, while the deployment may still be CREATING: the request waits for it.
    expect(await answer('accounts/local/models/tiny-ft')).toBe(before.ft);
    const dep = (await api('GET', 'deployments/keep')).json;
    expect(dep).toMatchObject({ state: 'READY', baseModel: 'accounts/local/models/tiny' });
    expect((await api('GET', 'deployedModels')).json.deployedModels).toEqual(deployed);
    expect(await answer('accounts/local/models/tiny')).toBe(before.base);

    // Unloaded and deleted: gone after the next restart too.
    expect(await verb('unload-lora', 'tiny-ft', '--deployment', 'keep')).toMatch(/unloaded/);
    await srv.kill();
    srv = await startServe(data, ARGS);
    await waitFor('keep to load', async () => (await api('GET', 'deployments/keep')).json.state === 'READY');
    expect((await api('GET', 'deployedModels')).json.deployedModels ?? []).toEqual([]);
    expect(await verb('delete', 'keep')).toMatch(/deleted deployment keep/);
    await srv.kill();
    srv = await startServe(data, ARGS);
    expect(srv.output()).not.toMatch(/deployment\(s\) again/);
    expect((await api('GET', 'deployments')).json.deployments ?? []).toEqual([]);
  });
});

describe('a deployment in its own process', () => {
  /** The pid of deployment `id`'s newest process, once it differs from `not` (from the server's log lines). */
  const pidOf = (id: string, not = 0) =>
    waitFor(`a new process for ${id}`, () => {
      const re = new RegExp(`deployments: accounts/local/deployments/${id} serves .*pid (\\d+)\\)`, 'g');
      const pids = [...srv.output().matchAll(re)].map((m) => Number(m[1]));
      return pids.length && pids[pids.length - 1] !== not ? pids[pids.length - 1] : undefined;
    });
  const state = async (id: string) => (await api('GET', `deployments/${id}`)).json;
  const alive = (pid: number) => {
    try {
      return process.kill(pid, 0);
    } catch {
      return false;
    }
  };

  it('the API answers while it is stopped mid-request; killed, it starts again, 3 times, then is FAILED', async () => {
    expect(await verb('create', 'tiny', '--deployment-id', 'own', '--wait')).toMatch(/READY/);
    expect(await verb('load-lora', 'tiny-ft', '--deployment', 'own')).toMatch(/DEPLOYED/);
    const ft = await answer('accounts/local/models/tiny-ft');
    let pid = await pidOf('own');
    process.kill(pid, 'SIGSTOP');
    try {
      let done = false;
      const pending = answer('accounts/local/models/tiny').finally(() => (done = true));
      // The request waits on the stopped process; the server itself answers.
      expect((await state('own')).state).toBe('READY');
      expect((await api('GET', 'supervisedFineTuningJobs')).status).toBe(200);
      expect(done).toBe(false);
      process.kill(pid, 'SIGCONT');
      expect(typeof (await pending)).toBe('string');
    } finally {
      process.kill(pid, 'SIGCONT');
    }

    for (let k = 1; k <= 3; k++) {
      process.kill(pid, 'SIGKILL');
      pid = await pidOf('own', pid); // started again, with its LoRA model: requests wait for it
      expect(await answer('accounts/local/models/tiny-ft')).toBe(ft);
      expect(await state('own')).toMatchObject({ state: 'READY' });
      expect(srv.output()).toContain(`inference process exited (signal SIGKILL); started again (${k} of 3)`);
    }
    process.kill(pid, 'SIGKILL');
    const failed = await waitFor('own to fail', async () =>
      (await state('own')).state === 'FAILED' ? state('own') : undefined,
    );
    expect(failed.status.message).toMatch(/exited \(signal SIGKILL\); not started again after 3 restarts/);
    await expect(answer('accounts/local/models/tiny')).rejects.toMatchObject({ status: 409 });
    expect((await api('GET', 'deployments')).status).toBe(200); // the server serves on
    expect(await verb('delete', 'own')).toMatch(/deleted deployment own/);
    expect(await verb('create', 'tiny', '--deployment-id', 'own', '--wait')).toMatch(/READY/);
    expect(typeof (await answer('accounts/local/models/tiny'))).toBe('string');
    // Deleted while a request runs (queued behind the stop, so the close message reaches it mid-request): that
    // request is answered 404 deployment_not_found, streamed or not, never a server error.
    pid = await pidOf('own', pid);
    process.kill(pid, 'SIGSTOP');
    try {
      const req = {
        model: 'accounts/local/models/tiny',
        messages: [{ role: 'user' as const, content: 'hi' }],
        max_tokens: 500,
      };
      const plain = client()
        .chat.completions.create(req)
        .catch((e) => e);
      const streamed = client()
        .chat.completions.create({ ...req, stream: true })
        .then(async (s) => {
          for await (const _ of s);
        })
        .catch((e) => e);
      await new Promise((r) => setTimeout(r, 500)); // both requests reach the server (and wait on the process)
      const deleting = verb('delete', 'own');
      await new Promise((r) => setTimeout(r, 300));
      process.kill(pid, 'SIGCONT');
      expect(await deleting).toMatch(/deleted deployment own/);
      expect(await plain).toMatchObject({ status: 404, code: 'deployment_not_found' });
      expect(await streamed).toMatchObject({
        message: expect.stringMatching(
          /deployment accounts\/local\/deployments\/own was deleted while this request ran/,
        ),
      });
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGCONT');
    }
  });
});
