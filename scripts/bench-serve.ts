// `npm run bench -- serve [--pollers 100] [--seconds 15] [--deploy-layers 8]`: GET-job latency of `lorasft serve`
// with N concurrent pollers, once with nothing training, once while a job trains (the trainer is a child process,
// so the server's event loop only answers requests) and once while a deployment prefills and decodes chat requests
// back to back (random bf16 weights at Qwen3-0.6B's widths with --deploy-layers layers, real Qwen3 tokenizer; 0 to
// skip; ~1000-token prompts). Starts a real server on a free loopback port with a temp data dir, the demo base model
// and the demo dataset; prints one table (and --json one line). Then uploads a --upload-mb dataset (the demo rows
// repeated; 0 to skip) through the multipart endpoint and reports its time, validation included.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { makeTinyModel } from '../src/model/tiny.ts';

/** A JSON body of any of the API's many shapes (each test reads the fields it checks). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const { values } = parseArgs({
  options: {
    pollers: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '15' },
    'upload-mb': { type: 'string', default: '160' },
    'deploy-layers': { type: 'string', default: '8' },
    json: { type: 'boolean' },
  },
});
const UPLOAD_MB = Number(values['upload-mb']);
const POLLERS = Number(values.pollers);
const SECONDS = Number(values.seconds);
const DEPLOY_LAYERS = Number(values['deploy-layers']);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const data = fs.mkdtempSync(path.join(os.tmpdir(), 'lorasft-bench-serve-'));
const A = '/v1/accounts/local';

const server = spawn(
  process.execPath,
  [path.join(ROOT, 'bin/lorasft.js'), 'serve', '--port', '0', '--data-dir', data, '--workers', '1'],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const url = await new Promise<URL>((resolve, reject) => {
  let out = '';
  server.stdout!.on('data', (d) => {
    out += d;
    const m = /listening on (\S+)/.exec(out);
    if (m) resolve(new URL(m[1]));
  });
  server.on('exit', (c) => reject(new Error(`server exited with ${c}: ${out}`)));
});
const agent = new http.Agent({ keepAlive: true, maxSockets: POLLERS });

function call(
  method: string,
  p: string,
  body?: unknown,
  headers: Record<string, string> = {},
  raw?: Buffer,
): Promise<{ status: number; json: Json }> {
  const payload = raw ?? (body === undefined ? undefined : Buffer.from(JSON.stringify(body)));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path: p,
        agent,
        headers: {
          ...(payload ? { 'content-length': String(payload.length), 'content-type': 'application/json' } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString() || '{}') }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function waitState(id: string, states: string[]): Promise<void> {
  for (let i = 0; i < 6000; i++) {
    const r = await call('GET', `${A}/supervisedFineTuningJobs/${id}`);
    if (states.includes(r.json.state)) return;
    if (r.json.state === 'JOB_STATE_FAILED') throw new Error(`job ${id} failed: ${r.json.status.message}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`job ${id} never reached ${states}`);
}

/** N pollers GET the job back to back for `seconds`; latency percentiles in ms. */
async function poll(id: string, seconds: number) {
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  let errors = 0;
  await Promise.all(
    Array.from({ length: POLLERS }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const r = await call('GET', `${A}/supervisedFineTuningJobs/${id}`);
        lat.push(performance.now() - t);
        if (r.status !== 200) errors++;
      }
    }),
  );
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return {
    requests: lat.length,
    perS: Math.round(lat.length / seconds),
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    max: lat[lat.length - 1],
    errors,
  };
}

/** Latency while a deployment answers long chat requests back to back (one at a time: a prefill each). */
async function whileDecoding() {
  const dir = path.join(data, 'deploy-model');
  makeTinyModel({
    family: 'qwen3',
    out: dir,
    tokenizer: 'qwen3',
    hidden: 1024,
    layers: DEPLOY_LAYERS,
    heads: 16,
    kvHeads: 8,
    headDim: 128,
    intermediate: 3072,
    dtype: 'bf16',
  });
  const lorasft = path.join(ROOT, 'bin/lorasft.js');
  const imp = spawn(process.execPath, [lorasft, 'model', 'import', 'big', dir, '--data-dir', data], {
    stdio: 'inherit',
  });
  await new Promise((r) => imp.on('exit', r));
  const dep = await call('POST', `${A}/deployments?deploymentId=big`, { baseModel: 'big' });
  if (dep.status !== 200) throw new Error(`deployment: ${JSON.stringify(dep.json)}`);
  for (let i = 0; (await call('GET', `${A}/deployments/big`)).json.state !== 'READY'; i++) {
    if (i > 3000) throw new Error('deployment never READY');
    await new Promise((r) => setTimeout(r, 100));
  }
  const content = 'Tell me about the history of the city and its river. '.repeat(90);
  const body = { model: `accounts/local/models/big`, messages: [{ role: 'user', content }], max_tokens: 8 };
  let stop = false,
    completions = 0,
    promptTokens = 0,
    busyS = 0;
  const client = (async () => {
    while (!stop) {
      const t = performance.now();
      const r = await call('POST', '/inference/v1/chat/completions', body);
      if (r.status !== 200) throw new Error(`chat: ${JSON.stringify(r.json)}`);
      busyS += (performance.now() - t) / 1000;
      completions++;
      promptTokens = r.json.usage.prompt_tokens;
    }
  })();
  await new Promise((r) => setTimeout(r, 500)); // the first prefill under way
  const latency = await poll('short', SECONDS);
  stop = true;
  await client;
  await call('DELETE', `${A}/deployments/big`);
  return { latency, completions, promptTokens, seconds: busyS / Math.max(1, completions) };
}

try {
  await call('POST', `${A}/datasets`, { datasetId: 'demo' });
  const b = 'bnd';
  const file = fs.readFileSync(path.join(ROOT, 'examples/demo/train.jsonl'));
  const raw = Buffer.concat([
    Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="train.jsonl"\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${b}--\r\n`),
  ]);
  const up = await call(
    'POST',
    `${A}/datasets/demo:upload`,
    undefined,
    { 'content-type': `multipart/form-data; boundary=${b}`, 'content-length': String(raw.length) },
    raw,
  );
  if (up.status !== 200) throw new Error(JSON.stringify(up.json));
  const job = {
    dataset: 'demo',
    baseModel: 'accounts/fireworks/models/lorasft-demo',
    learningRate: 0.01,
    batchSize: 512,
  };
  await call('POST', `${A}/supervisedFineTuningJobs?supervisedFineTuningJobId=short`, { ...job, maxSteps: 1 });
  await waitState('short', ['JOB_STATE_COMPLETED']);
  const idle = await poll('short', SECONDS);
  await call('POST', `${A}/supervisedFineTuningJobs?supervisedFineTuningJobId=long`, { ...job, epochs: 5 });
  await waitState('long', ['JOB_STATE_RUNNING']);
  const before = (await call('GET', `${A}/supervisedFineTuningJobs/long`)).json.jobProgress.percent;
  const busy = await poll('long', SECONDS);
  const after = (await call('GET', `${A}/supervisedFineTuningJobs/long`)).json.jobProgress.percent;
  await call('POST', `${A}/supervisedFineTuningJobs/long:cancel`, {});
  const decoding = DEPLOY_LAYERS > 0 ? await whileDecoding() : null;
  let upload = null;
  if (UPLOAD_MB > 0) {
    const big = path.join(data, 'big.jsonl');
    const reps = Math.ceil((UPLOAD_MB * 1024 * 1024) / file.length);
    const fd = fs.openSync(big, 'w');
    for (let i = 0; i < reps; i++) fs.writeSync(fd, file);
    fs.closeSync(fd);
    const bytes = fs.statSync(big).size;
    await call('POST', `${A}/datasets`, { datasetId: 'big' });
    const form = new FormData();
    form.append('file', await fs.openAsBlob(big), 'big.jsonl');
    const t = performance.now();
    const r = await fetch(`${url.origin}${A}/datasets/big:upload`, { method: 'POST', body: form });
    const s = (performance.now() - t) / 1000;
    const j = (await r.json()) as { exampleCount?: string; error?: unknown };
    if (r.status !== 200) throw new Error(`upload: ${JSON.stringify(j)}`);
    upload = { mb: bytes / 1048576, examples: Number(j.exampleCount), seconds: s };
  }
  const f = (x: number) => x.toFixed(1).padStart(7);
  if (values.json)
    console.log(JSON.stringify({ pollers: POLLERS, seconds: SECONDS, idle, training: busy, decoding, upload }));
  console.log(`GET job latency, ${POLLERS} concurrent pollers, ${SECONDS} s each (ms)`);
  console.log('             requests  req/s     p50     p90     p99     max  errors');
  for (const [name, r] of [
    ['idle', idle],
    ['training', busy],
    ...(decoding ? [['decoding', decoding.latency] as const] : []),
  ] as const) {
    console.log(
      `${name.padEnd(12)} ${String(r.requests).padStart(8)} ${String(r.perS).padStart(6)} ${f(r.p50)} ${f(r.p90)} ${f(r.p99)} ${f(r.max)} ${String(r.errors).padStart(7)}`,
    );
  }
  console.log(`(meanwhile the training job went from ${before}% to ${after}%)`);
  if (decoding)
    console.log(
      `(meanwhile the deployment answered ${decoding.completions} chat requests of ${decoding.promptTokens} prompt tokens, ${decoding.seconds.toFixed(2)} s each)`,
    );
  if (upload)
    console.log(
      `upload: ${upload.mb.toFixed(0)} MB, ${upload.examples} examples, validated and stored in ${upload.seconds.toFixed(1)} s (${(upload.mb / upload.seconds).toFixed(1)} MB/s)`,
    );
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
  agent.destroy();
  fs.rmSync(data, { recursive: true, force: true });
}
