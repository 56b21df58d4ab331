// 30+ bad requests against a real `lorasft serve`: each gets the right HTTP status, the one error JSON shape, and
// leaves the store (every list, every file under the data dir) exactly as it was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { Fixture } from '../train/fixture.ts';
import { request, startServe, stopAllServers, type Reply, type Serve, serveFixture, waitFor } from './helpers.ts';

const KEY = 'k3y';
let fx: Fixture;
let data: string;
let srv: Serve;
const A = '/v1/accounts/local';

/** Everything a request could change: the API's lists and the data dir's files (the db itself excepted). */
async function snapshot(): Promise<string> {
  const lists: unknown[] = [];
  for (const acc of ['local', 'fireworks']) {
    for (const c of ['datasets', 'supervisedFineTuningJobs', 'models'])
      lists.push((await request(srv.url, 'GET', `/v1/accounts/${acc}/${c}`, { key: KEY })).json);
  }
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!e.name.startsWith('lorasft.db')) files.push(`${path.relative(data, p)} ${fs.statSync(p).size}`);
    }
  };
  walk(data);
  const outside = fs.readdirSync(fx.root).sort();
  return JSON.stringify({ lists, files: files.sort(), outside });
}

function multipart(
  field: string,
  filename: string,
  content: Buffer | string,
): { raw: Buffer; headers: Record<string, string> } {
  const b = 'xXbOuNdArYx';
  const raw = Buffer.concat([
    Buffer.from(
      `--${b}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
    Buffer.from(content),
    Buffer.from(`\r\n--${b}--\r\n`),
  ]);
  return { raw, headers: { 'content-type': `multipart/form-data; boundary=${b}` } };
}

beforeAll(async () => {
  ({ fx, data } = serveFixture('accounts/fireworks/models/tiny'));
  // --workers 0: jobs stay queued, so the dataset and model they use are "in use" without any training.
  srv = await startServe(data, ['--workers', '0', '--api-key', KEY, '--max-upload-mb', '1', '--no-demo-model']);
  const ok = async (m: string, p: string, o: Parameters<typeof request>[3] = {}) => {
    const r = await request(srv.url, m, p, { key: KEY, ...o });
    expect(r.status, r.text).toBe(200);
  };
  await ok('POST', `${A}/datasets`, { body: { datasetId: 'good', dataset: { userUploaded: {} } } });
  await ok('POST', `${A}/datasets/good:upload`, multipart('file', 'train.jsonl', fs.readFileSync(fx.train)));
  await ok('POST', `${A}/datasets`, { body: { datasetId: 'empty', dataset: { userUploaded: {} } } });
  await ok('POST', `${A}/supervisedFineTuningJobs?supervisedFineTuningJobId=queued`, {
    body: { dataset: 'good', baseModel: 'accounts/fireworks/models/tiny', outputModel: 'queued-out' },
  });
});
afterAll(stopAllServers);

const job = (over: Record<string, unknown> = {}) => ({
  dataset: 'good',
  baseModel: 'accounts/fireworks/models/tiny',
  ...over,
});
const big = Buffer.alloc(1_200_000, 'x');

// [what, method, path, options, status, message pattern]
const CASES: [string, string, string, Parameters<typeof request>[3] & { noKey?: boolean }, number, RegExp][] = [
  ['no API key', 'GET', `${A}/datasets`, { noKey: true }, 401, /API key/],
  ['wrong API key', 'GET', `${A}/datasets`, { key: 'nope' }, 401, /API key/],
  ['bad account id', 'GET', '/v1/accounts/Local/datasets', {}, 400, /invalid account id "Local"/],
  [
    "account '-' outside a list of models or datasets",
    'GET',
    '/v1/accounts/-/supervisedFineTuningJobs',
    {},
    400,
    /account '-' means every/,
  ],
  ["account '-' reading one dataset", 'GET', '/v1/accounts/-/datasets/x', {}, 400, /account '-' means every/],
  [
    "create in account '-'",
    'POST',
    '/v1/accounts/-/datasets',
    { body: { datasetId: 'x', dataset: { userUploaded: {} } } },
    400,
    /only GET \/v1\/accounts\/-\/models/,
  ],
  ['traversal in an id (encoded)', 'GET', `${A}/datasets/..%2F..%2Fetc`, {}, 400, /invalid dataset id/],
  ['traversal in an id (raw ..)', 'GET', `${A}/datasets/..`, {}, 400, /invalid dataset id/],
  ['traversal through the path', 'DELETE', `${A}/datasets/../../models/x`, {}, 404, /no such route/],
  ['id with a dot', 'GET', `${A}/datasets/a.jsonl`, {}, 400, /invalid dataset id/],
  ['id over 63 characters', 'GET', `${A}/datasets/${'a'.repeat(64)}`, {}, 400, /1 to 63/],
  ['malformed percent-encoding', 'GET', `${A}/datasets/%E0%A4%A`, {}, 400, /percent-encoding/],
  [
    'create dataset: traversal id',
    'POST',
    `${A}/datasets`,
    { body: { datasetId: '../x', dataset: {} } },
    400,
    /invalid datasetId/,
  ],
  [
    'create dataset: unknown field',
    'POST',
    `${A}/datasets`,
    { body: { datasetID: 'x' } },
    400,
    /unknown field 'datasetID'/,
  ],
  [
    'create dataset: unknown nested field',
    'POST',
    `${A}/datasets`,
    { body: { datasetId: 'x', dataset: { rows: 3 } } },
    400,
    /dataset: unknown field 'rows'/,
  ],
  [
    'create dataset: wrong type',
    'POST',
    `${A}/datasets`,
    { body: { datasetId: 'x', dataset: { exampleCount: 'many' } } },
    400,
    /exampleCount must be a non-negative integer/,
  ],
  [
    'create dataset: id not a string',
    'POST',
    `${A}/datasets`,
    { body: { datasetId: 7 } },
    400,
    /datasetId must be a string/,
  ],
  [
    'create dataset: body not JSON',
    'POST',
    `${A}/datasets`,
    { raw: '{"datasetId": ', headers: { 'content-type': 'application/json' } },
    400,
    /not valid JSON/,
  ],
  ['create dataset: body an array', 'POST', `${A}/datasets`, { body: [1, 2] }, 400, /must be a JSON object/],
  [
    'create dataset: exists',
    'POST',
    `${A}/datasets`,
    { body: { datasetId: 'good', dataset: {} } },
    409,
    /already exists/,
  ],
  ['get missing dataset', 'GET', `${A}/datasets/nope`, {}, 404, /not found/],
  [
    'upload to a missing dataset',
    'POST',
    `${A}/datasets/nope:upload`,
    multipartOpts('file', 'a.jsonl', 'x'),
    404,
    /not found/,
  ],
  ['upload not multipart', 'POST', `${A}/datasets/empty:upload`, { body: { file: 'x' } }, 400, /multipart\/form-data/],
  [
    'upload non-JSONL',
    'POST',
    `${A}/datasets/empty:upload`,
    multipartOpts('file', 'data.jsonl', Buffer.from([0xff, 0xfe, 0, 1, 10, 0x7b, 10])),
    400,
    /line 1: invalid UTF-8[\s\S]*line 2: invalid JSON/,
  ],
  [
    'upload of a file not named *.jsonl (the managed File format)',
    'POST',
    `${A}/datasets/empty:upload`,
    multipartOpts('file', 'train.json', fs.readFileSync(new URL('../../examples/demo/train.jsonl', import.meta.url))),
    400,
    /^train\.json: not a \.jsonl file \(a dataset is JSON Lines, one example per line, in a file named \*\.jsonl\); rename it to train\.jsonl$/,
  ],
  [
    'upload without a file name',
    'POST',
    `${A}/datasets/empty:upload`,
    multipartOpts('file', '', fs.readFileSync(new URL('../../examples/demo/train.jsonl', import.meta.url))),
    400,
    /'file' part has no file name; send a \.jsonl file/,
  ],
  [
    'upload with too few examples',
    'POST',
    `${A}/datasets/empty:upload`,
    multipartOpts(
      'file',
      'a.jsonl',
      fs.readFileSync(new URL('../../examples/demo/train.jsonl', import.meta.url), 'utf8').split('\n')[0] + '\n',
    ),
    400,
    /1 example\(s\); a dataset needs at least 3/,
  ],
  [
    'upload with a traversal file name',
    'POST',
    `${A}/datasets/empty:upload`,
    multipartOpts('file', '../../../evil.jsonl', 'nope\n'),
    400,
    /line 1: invalid JSON/,
  ],
  [
    'upload oversize',
    'POST',
    `${A}/datasets/empty:upload`,
    multipartOpts('file', 'big.jsonl', big),
    413,
    /at most 1048576/,
  ],
  [
    'upload in the wrong part',
    'POST',
    `${A}/datasets/empty:upload`,
    multipartOpts('data', 'a.jsonl', 'x'),
    400,
    /unexpected multipart part 'data'/,
  ],
  [
    'upload to a READY dataset',
    'POST',
    `${A}/datasets/good:upload`,
    multipartOpts('file', 'a.jsonl', 'x'),
    409,
    /already holds an uploaded file/,
  ],
  [
    'upload endpoint: traversal file name',
    'POST',
    `${A}/datasets/empty:getUploadEndpoint`,
    { body: { filenameToSize: { '../../x.jsonl': 10 } } },
    400,
    /not a plain file name/,
  ],
  [
    'upload endpoint: a file not named *.jsonl',
    'POST',
    `${A}/datasets/empty:getUploadEndpoint`,
    { body: { filenameToSize: { 'data.txt': 10 } } },
    400,
    /^filenameToSize: data\.txt is not a \.jsonl file .*; rename it to data\.jsonl$/,
  ],
  [
    'upload endpoint: size over the limit',
    'POST',
    `${A}/datasets/empty:getUploadEndpoint`,
    { body: { filenameToSize: { 'x.jsonl': 5e9 } } },
    413,
    /at most 1048576/,
  ],
  [
    'upload endpoint: two files',
    'POST',
    `${A}/datasets/empty:getUploadEndpoint`,
    { body: { filenameToSize: { 'a.jsonl': 1, 'b.jsonl': 1 } } },
    400,
    /exactly one file/,
  ],
  [
    'signed upload: bad signature',
    'PUT',
    '/upload/accounts/local/datasets/empty?size=5&expires=9999999999&signature=AAAA',
    { raw: 'hello', noKey: true },
    401,
    /invalid upload signature/,
  ],
  [
    'validate an upload never made',
    'POST',
    `${A}/datasets/empty:validateUpload`,
    { body: {} },
    400,
    /no uploaded file to validate/,
  ],
  ['delete a dataset in use', 'DELETE', `${A}/datasets/good`, {}, 409, /used by 1 queued or running job/],
  ['delete a model in use', 'DELETE', '/v1/accounts/fireworks/models/tiny', {}, 409, /used by 1 queued or running job/],
  [
    'create job: a managed field of the wrong value',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ purpose: 'XYZ' }) },
    400,
    /^request: purpose must be one of PURPOSE_UNSPECIFIED, PURPOSE_PILOT, got "XYZ"$/,
  ],
  [
    'create job: unknown field',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ learningRat: 1 }) },
    400,
    /unknown field 'learningRat'/,
  ],
  [
    'create job: wrong type',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ epochs: 'two' }) },
    400,
    /epochs must be a number/,
  ],
  [
    'create job: bad value',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ loraRank: 3 }) },
    400,
    /loraRank must be a power of 2/,
  ],
  [
    'create job: unknown backend',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ backend: 'gpu' }) },
    400,
    /^request: backend must be one of native, cpu, tensorflow \(or '': the fastest present\), got "gpu"$/,
  ],
  [
    'create job: batchSize over int32',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ batchSize: 99999999999999999999 }) },
    400,
    /^request: batchSize must be at most 2147483647 \(an int32, as in the managed API\), got 100000000000000000000$/,
  ],
  [
    'create job: no dataset',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: { baseModel: 'accounts/fireworks/models/tiny' } },
    400,
    /dataset is required/,
  ],
  [
    'create job: missing dataset',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ dataset: 'nope' }) },
    400,
    /dataset accounts\/local\/datasets\/nope does not exist/,
  ],
  [
    'create job: dataset not uploaded',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ dataset: 'empty' }) },
    400,
    /is UPLOADING, not READY/,
  ],
  [
    'create job: dataset as a path',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ dataset: '/etc/passwd' }) },
    400,
    /not a dataset name/,
  ],
  [
    'create job: missing base model',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ baseModel: 'accounts/fireworks/models/nope' }) },
    400,
    /does not exist \(`lorasft model list -a fireworks` shows that account's models\)/,
  ],
  [
    'create job: base model and warm start',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ warmStartFrom: 'queued-out' }) },
    400,
    /exactly one of baseModel or warmStartFrom/,
  ],
  [
    'create job: bad job id',
    'POST',
    `${A}/supervisedFineTuningJobs?supervisedFineTuningJobId=Bad_Id`,
    { body: job() },
    400,
    /invalid supervisedFineTuningJobId/,
  ],
  [
    'create job: a template path',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ jinjaTemplate: '/etc/passwd' }) },
    400,
    /jinjaTemplate must be the template text/,
  ],
  [
    'create job: a template that does not parse',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ jinjaTemplate: '{{ messages }}\n{% foo %}' }) },
    400,
    /^jinjaTemplate: chat template line 2 does not parse: Unknown statement type: foo$/,
  ],
  [
    'create job: jobId in the body',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ jobId: 'x' }) },
    400,
    /supervisedFineTuningJobId/,
  ],
  [
    'create job: exists',
    'POST',
    `${A}/supervisedFineTuningJobs?supervisedFineTuningJobId=queued`,
    { body: job() },
    409,
    /already exists/,
  ],
  [
    'create job: output model taken',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ outputModel: 'queued-out' }) },
    409,
    /output of a queued or running job/,
  ],
  [
    'create job: epochs over the example cap',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ epochs: 300000 }) },
    400,
    /exceeds the limit of 3000000/,
  ],
  [
    'create job: body over 1 MiB',
    'POST',
    `${A}/supervisedFineTuningJobs`,
    { body: job({ displayName: 'x'.repeat(1_100_000) }) },
    413,
    /over 1048576 bytes/,
  ],
  [
    'resume a queued job',
    'POST',
    `${A}/supervisedFineTuningJobs/queued:resume`,
    {},
    409,
    /only a cancelled or failed job/,
  ],
  ['get a missing job', 'GET', `${A}/supervisedFineTuningJobs/nope`, {}, 404, /not found/],
  ['list: negative pageSize', 'GET', `${A}/supervisedFineTuningJobs?pageSize=-1`, {}, 400, /pageSize/],
  ['list: bad pageToken', 'GET', `${A}/datasets?pageToken=garbage`, {}, 400, /invalid pageToken/],
  [
    'list: bad filter',
    'GET',
    `${A}/supervisedFineTuningJobs?filter=state%3DJOB_STATE_NAPPING`,
    {},
    400,
    /unsupported filter/,
  ],
  ['unknown query parameter', 'GET', `${A}/datasets/good?expand=1`, {}, 400, /unknown query parameter 'expand'/],
  ['unknown verb', 'POST', `${A}/supervisedFineTuningJobs/queued:explode`, {}, 404, /no such method 'explode'/],
  ['unknown collection', 'GET', `${A}/widgets`, {}, 404, /no such collection 'widgets'/],
  ['method not allowed', 'PUT', `${A}/datasets/good`, { body: {} }, 405, /PUT is not allowed/],
  [
    'download a base model',
    'GET',
    '/v1/accounts/fireworks/models/tiny:getDownloadEndpoint',
    {},
    400,
    /only PEFT addons are downloaded/,
  ],
  [
    'download: bad signature',
    'GET',
    '/download/accounts/local/models/queued-out/adapter_model.safetensors?expires=9999999999&signature=AAAA',
    { noKey: true },
    401,
    /invalid download signature/,
  ],
  [
    'download: traversal',
    'GET',
    '/download/accounts/local/models/x/..%2F..%2Florasft.db?expires=1&signature=x',
    { noKey: true },
    404,
    /no file/,
  ],
];

function multipartOpts(field: string, filename: string, content: Buffer | string) {
  const m = multipart(field, filename, content);
  return { raw: m.raw, headers: m.headers };
}

// Generous: a loaded 2-core machine runs these several times slower than an idle one.
describe('lorasft serve: bad requests', { timeout: 900_000 }, () => {
  it(`${CASES.length} bad requests: the right status, one error shape, the store unchanged`, async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    const before = await snapshot();
    for (const [what, method, p, o, status, msg] of CASES) {
      const r: Reply = await request(srv.url, method, p, { ...o, key: o.noKey ? undefined : (o.key ?? KEY) });
      expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBe(status);
      expect(Object.keys(r.json ?? {}), what).toEqual(['error']);
      expect(Object.keys(r.json.error).sort(), what).toEqual(['code', 'message', 'status']);
      expect(r.json.error.code, what).toBe(status);
      expect(r.json.error.message, what).toMatch(msg);
      expect(await snapshot(), `${what} changed the store`).toBe(before);
    }
    // The inference API answers a missing key in OpenAI's error shape, as its other errors.
    const inf = await request(srv.url, 'POST', '/inference/v1/chat/completions', { body: { model: 'x' }, key: 'nope' });
    expect([inf.status, inf.json]).toEqual([
      401,
      {
        error: {
          message: expect.stringMatching(/API key/),
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_api_key',
        },
      },
    ]);
    // The server is still fine, and the queued job still waits.
    const q = await request(srv.url, 'GET', `${A}/supervisedFineTuningJobs/queued`, { key: KEY });
    expect(q.json.state).toBe('JOB_STATE_PENDING');
  });

  it('an upload the client abandons mid-body leaves no file behind and frees the dataset', async () => {
    const r = await request(srv.url, 'POST', `${A}/datasets`, { key: KEY, body: { datasetId: 'abandoned' } });
    expect(r.status, r.text).toBe(200);
    const m = multipart('file', 'train.jsonl', fs.readFileSync(fx.train));
    const u = new URL(srv.url);
    const req = http.request({
      host: u.hostname,
      port: u.port,
      method: 'POST',
      path: `${A}/datasets/abandoned:upload`,
      headers: { ...m.headers, authorization: `Bearer ${KEY}`, 'content-length': String(m.raw.length) },
    });
    req.on('error', () => {}); // the socket is destroyed on purpose
    req.write(m.raw.subarray(0, m.raw.length >> 1));
    const dir = path.join(data, 'datasets', 'local', 'abandoned');
    await waitFor(
      'the temp file',
      () => fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.startsWith('.upload-')),
      60_000,
    );
    req.destroy();
    // The dataset takes the next upload, and the abandoned temp file is gone.
    const again = await waitFor(
      'the dataset to be free',
      async () => {
        const a = await request(srv.url, 'POST', `${A}/datasets/abandoned:upload`, { key: KEY, ...m });
        return a.status === 409 ? undefined : a;
      },
      60_000,
    );
    expect(again.status, again.text).toBe(200);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.upload-'))).toEqual([]);
    expect((await request(srv.url, 'GET', `${A}/datasets/abandoned`, { key: KEY })).json.state).toBe('READY');
  });

  it('takes a .jsonl file name in any case (DATA.JSONL), on both upload paths', async () => {
    for (const id of ['upper', 'upper-big'])
      expect((await request(srv.url, 'POST', `${A}/datasets`, { key: KEY, body: { datasetId: id } })).status).toBe(200);
    const up = await request(srv.url, 'POST', `${A}/datasets/upper:upload`, {
      key: KEY,
      ...multipart('file', 'TRAIN.JSONL', fs.readFileSync(fx.train)),
    });
    expect([up.status, up.json.state]).toEqual([200, 'READY']);
    const ep = await request(srv.url, 'POST', `${A}/datasets/upper-big:getUploadEndpoint`, {
      key: KEY,
      body: { filenameToSize: { 'DATA.JSONL': 10 } },
    });
    expect([ep.status, Object.keys(ep.json.filenameToSignedUrls)]).toEqual([200, ['DATA.JSONL']]);
  });

  it('a second server on the same data dir refuses to start', async () => {
    await expect(startServe(data, ['--no-demo-model'])).rejects.toThrow(/already served by lorasft serve \(pid \d+\)/);
    expect((await request(srv.url, 'GET', '/healthz')).status).toBe(200);
  });
});
