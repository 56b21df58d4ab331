// Deployments on `lorasft serve`: a job's output model is deployed with `lorasft deployment` verbs (firectl's
// create / load-lora / unload-lora), queried with the official openai client, unloaded and deleted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { makeFixture, type Fixture } from '../train/fixture.ts';
import { request, startServe, stopAllServers, waitForJob, type Serve } from './helpers.ts';
import { BIN } from '../helpers/index.ts';

const run = promisify(execFile);
let fx: Fixture;
let srv: Serve;

beforeAll(async () => {
  fx = makeFixture();
  const data = path.join(fx.root, 'data');
  await run(process.execPath, [BIN, 'model', 'import', 'accounts/local/models/tiny', fx.model, '--data-dir', data]);
  srv = await startServe(data, ['--workers', '1', '--threads-per-job', '1', '--no-demo-model']);
  const api = (m: string, p: string, body?: unknown) => request(srv.url, m, `/v1/accounts/local/${p}`, { body });
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

const verb = async (...args: string[]) =>
  (await run(process.execPath, [BIN, 'deployment', ...args], { env: { ...process.env, LORASFT_API_BASE: srv.url } }))
    .stdout;

describe('lorasft deployment', () => {
  it('create --wait, load-lora, query with the openai client, unload-lora, delete', async () => {
    expect(await verb('create', 'tiny', '--deployment-id', 'base', '--wait')).toMatch(/READY/);
    expect(await verb('load-lora', 'tiny-ft', '--deployment', 'base')).toMatch(/DEPLOYED/);
    expect(await verb('list')).toMatch(/^base +accounts\/local\/models\/tiny +READY/m);
    const client = new OpenAI({
      baseURL: `${srv.url}/inference/v1`,
      apiKey: 'unused',
      maxRetries: 0,
      timeout: 120_000,
    });
    const c = await client.chat.completions.create({
      model: 'accounts/local/models/tiny-ft',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
      temperature: 0,
    });
    expect(c.usage!.completion_tokens).toBeGreaterThan(0);
    expect(await verb('unload-lora', 'tiny-ft', '--deployment', 'base')).toMatch(/unloaded/);
    await expect(
      client.chat.completions.create({
        model: 'accounts/local/models/tiny-ft',
        messages: [{ role: 'user', content: 'hi' }],
      }),
    ).rejects.toMatchObject({ status: 404, code: 'model_not_deployed' });
    expect(await verb('delete', 'base')).toMatch(/deleted deployment base/);
    expect((await request(srv.url, 'GET', '/v1/accounts/local/deployments/base')).status).toBe(404);
  });
});
