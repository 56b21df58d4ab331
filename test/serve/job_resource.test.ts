// The supervisedFineTuningJobs resource against the Create Supervised Fine-tuning Job reference, on a real
// `lorasft serve` with no workers (jobs stay queued): documented defaults echoed, nested objects checked by field.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { openStore } from '../../src/serve/store.ts';
import { request, serveFixture, startServe, stopAllServers, type Serve } from './helpers.ts';

const A = '/v1/accounts/local';
const BASE = 'accounts/fireworks/models/tiny';
let srv: Serve;

beforeAll(async () => {
  const { fx, data } = serveFixture(BASE);
  // A rank-16 PEFT addon of BASE, as a completed job registers it (no files: a queued job reads none).
  const store = openStore(data);
  const addon = 'accounts/local/models/addon16';
  const peftDetails = { baseModel: BASE, r: 16, loraAlpha: 32, targetModules: ['q_proj'] };
  const body = { name: addon, state: 'READY', kind: 'HF_PEFT_ADDON', peftDetails };
  store.insert({ kind: 'model', name: addon, account: 'local', state: 'READY', body, meta: { dir: fx.root } });
  store.close();
  srv = await startServe(data, ['--workers', '0', '--no-demo-model']);
  expect((await request(srv.url, 'POST', `${A}/datasets`, { body: { datasetId: 'd' } })).status).toBe(200);
  const b = 'xXbOuNdArYx';
  const raw = Buffer.concat([
    Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="train.jsonl"\r\n\r\n`),
    fs.readFileSync(fx.train),
    Buffer.from(`\r\n--${b}--\r\n`),
  ]);
  const up = await request(srv.url, 'POST', `${A}/datasets/d:upload`, {
    raw,
    headers: { 'content-type': `multipart/form-data; boundary=${b}` },
  });
  expect(up.status, up.text).toBe(200);
});
afterAll(stopAllServers);

const create = (over: Record<string, unknown>) =>
  request(srv.url, 'POST', `${A}/supervisedFineTuningJobs`, { body: { dataset: 'd', baseModel: BASE, ...over } });

describe('supervisedFineTuningJobs: the documented request fields', { timeout: 600_000 }, () => {
  it('checks the fields of awsS3Config, azureBlobStorageConfig and wandbConfig: a wrong type or unknown field is a 400 naming it', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ awsS3Config: { credentialsSecret: 5 } }, 'awsS3Config.credentialsSecret must be a string, got 5'],
      [{ awsS3Config: { iamRoleArn: true } }, 'awsS3Config.iamRoleArn must be a string, got true'],
      [{ awsS3Config: { bucket: 'x' } }, "unknown field 'awsS3Config.bucket' (known: credentialsSecret, iamRoleArn)"],
      [{ azureBlobStorageConfig: { tenantId: [1] } }, 'azureBlobStorageConfig.tenantId must be a string, got [1]'],
      [
        { azureBlobStorageConfig: { managedIdentityClientId: 7 } },
        'azureBlobStorageConfig.managedIdentityClientId must be a string, got 7',
      ],
      [{ wandbConfig: { enabled: 'yes' } }, 'wandbConfig.enabled must be true or false, got "yes"'],
      [{ wandbConfig: { enabled: true, project: 3 } }, 'wandbConfig.project must be a string, got 3'],
      [
        { wandbConfig: { url: 'https://wandb.ai/x' } },
        "unknown field 'wandbConfig.url' (known: enabled, apiKey, project, entity, runId)",
      ],
    ];
    for (const [over, msg] of cases) {
      const r = await create(over);
      expect([r.status, r.json?.error?.message], JSON.stringify(over)).toEqual([400, `request: ${msg}`]);
    }
    const list = await request(srv.url, 'GET', `${A}/supervisedFineTuningJobs`);
    expect(list.json.supervisedFineTuningJobs).toEqual([]);
    // Well-typed objects are taken and echoed (the W&B API key is not shown); null members count as unset.
    const ok = await create({
      awsS3Config: { credentialsSecret: 's', iamRoleArn: 'arn:aws:iam::1:role/r' },
      azureBlobStorageConfig: { credentialsSecret: 'c', managedIdentityClientId: 'm', tenantId: 't' },
      wandbConfig: { enabled: true, apiKey: 'k', project: 'p', entity: 'e', runId: null },
    });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json).toMatchObject({
      awsS3Config: { credentialsSecret: 's', iamRoleArn: 'arn:aws:iam::1:role/r' },
      azureBlobStorageConfig: { credentialsSecret: 'c', managedIdentityClientId: 'm', tenantId: 't' },
    });
    expect(ok.json.wandbConfig).toEqual({ enabled: true, project: 'p', entity: 'e' });
  });
});

describe('supervisedFineTuningJobs: boolean fields', { timeout: 600_000 }, () => {
  it('take JSON true / false only: a string "true" is a 400 naming the field, as for isTurbo', async () => {
    for (const key of ['earlyStop', 'evalAutoCarveout', 'isTurbo', 'mtpEnabled']) {
      const r = await create({ [key]: 'true' });
      expect([r.status, r.json?.error?.message]).toEqual([400, `request: ${key} must be true or false, got "true"`]);
    }
    const ok = await create({ earlyStop: true, evalAutoCarveout: false });
    expect([ok.status, ok.json.earlyStop, ok.json.evalAutoCarveout], ok.text).toEqual([200, true, false]);
  });
});

describe('supervisedFineTuningJobs: the created job', { timeout: 600_000 }, () => {
  it('has the output fields and the documented defaults: purpose PURPOSE_UNSPECIFIED, epochs 1, loraRank 8, outputModel the job id', async () => {
    const r = await request(srv.url, 'POST', `${A}/supervisedFineTuningJobs?supervisedFineTuningJobId=defaults`, {
      body: { dataset: 'd', baseModel: BASE },
    });
    expect(r.status, r.text).toBe(200);
    const rfc3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
    const expected = {
      name: 'accounts/local/supervisedFineTuningJobs/defaults',
      dataset: 'accounts/local/datasets/d',
      baseModel: BASE,
      outputModel: 'accounts/local/models/defaults',
      state: 'JOB_STATE_PENDING',
      status: { code: 'OK', message: expect.any(String) },
      createTime: expect.stringMatching(rfc3339),
      updateTime: expect.stringMatching(rfc3339),
      createdBy: expect.any(String),
      jobProgress: expect.objectContaining({ percent: 0, epoch: 0 }),
      epochs: 1,
      loraRank: 8,
      purpose: 'PURPOSE_UNSPECIFIED',
    };
    expect(r.json).toMatchObject(expected);
    const got = await request(srv.url, 'GET', `${A}/supervisedFineTuningJobs/defaults`);
    expect(got.json).toEqual(r.json);
    // A purpose given is echoed as given.
    const pilot = await create({ purpose: 'PURPOSE_PILOT' });
    expect(pilot.json.purpose).toBe('PURPOSE_PILOT');
  });
});

describe('supervisedFineTuningJobs: a warm start', { timeout: 600_000 }, () => {
  it("reports the rank of the LoRA layers it trains, its addon's; another loraRank is a 400 naming it", async () => {
    const warm = (over: Record<string, unknown>) =>
      request(srv.url, 'POST', `${A}/supervisedFineTuningJobs`, {
        body: { dataset: 'd', warmStartFrom: 'addon16', ...over },
      });
    const r = await warm({});
    expect([r.status, r.json.loraRank, r.json.baseModel], r.text).toEqual([200, 16, BASE]);
    expect((await warm({ loraRank: 16 })).json.loraRank).toBe(16);
    const bad = await warm({ loraRank: 8 });
    expect([bad.status, bad.json?.error?.message]).toEqual([
      400,
      'loraRank: 8 is not the rank of warmStartFrom accounts/local/models/addon16, 16 (a warm start trains its addon at its own rank; leave loraRank out)',
    ]);
  });
});
