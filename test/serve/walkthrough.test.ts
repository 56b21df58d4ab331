// The seed's workflow against a real `lorasft serve`: with curl (create dataset, upload, create job, poll to
// COMPLETED, list models, download the adapter and load it), then the same through the client verbs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { loadAdapter } from '../../src/model/peft.ts';
import { makeFixture, type Fixture } from '../train/fixture.ts';
import { jobDir, startServe, stopAllServers, waitFor, type Serve } from './helpers.ts';
import { BIN } from '../helpers/index.ts';

/** A JSON body of any of the API's many shapes (each test reads the fields it checks). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const run = promisify(execFile);
const KEY = 'test-key-123';
let fx: Fixture;
let data: string;
let srv: Serve;

beforeAll(async () => {
  fx = makeFixture();
  data = path.join(fx.root, 'data');
  await run(process.execPath, [
    BIN,
    'model',
    'import',
    'accounts/fireworks/models/tiny-qwen3',
    fx.model,
    '--data-dir',
    data,
  ]);
  srv = await startServe(data, ['--workers', '1', '--threads-per-job', '1'], {
    LORASFT_API_KEY: KEY,
    LORASFT_CACHE: path.join(fx.root, 'cache'),
  });
});
afterAll(stopAllServers);

/** curl with the API key; the parsed JSON answer (curl fails on HTTP >= 400 with --fail-with-body). */
async function curl(args: string[]): Promise<Json> {
  const { stdout } = await run('curl', ['-sS', '--fail-with-body', '-H', `Authorization: Bearer ${KEY}`, ...args]);
  return JSON.parse(stdout);
}

const JOB = { batchSize: 64, learningRate: 0.01, epochs: 1, evalAutoCarveout: false, seed: 3 };

// Generous: a loaded 2-core machine runs these several times slower than an idle one.
describe('lorasft serve: the REST walk-through', { timeout: 900_000 }, () => {
  it('with curl: dataset, upload, job, poll, models, download, load', async () => {
    const base = `${srv.url}/v1/accounts/local`;
    const ds = await curl([
      '-X',
      'POST',
      `${base}/datasets`,
      '-H',
      'Content-Type: application/json',
      '-d',
      JSON.stringify({ datasetId: 'walk-data', dataset: { userUploaded: {} } }),
    ]);
    expect(ds).toMatchObject({ name: 'accounts/local/datasets/walk-data', state: 'UPLOADING' });
    const up = await curl(['-X', 'POST', `${base}/datasets/walk-data:upload`, '-F', `file=@${fx.train}`]);
    expect(up).toMatchObject({ state: 'READY', exampleCount: '12' });
    expect(fs.readFileSync(path.join(data, 'datasets/local/walk-data/data.jsonl'), 'utf8')).toBe(
      fs.readFileSync(fx.train, 'utf8'),
    );

    const body = {
      dataset: 'accounts/local/datasets/walk-data',
      baseModel: 'accounts/fireworks/models/tiny-qwen3',
      outputModel: 'walk-model',
      displayName: 'walk',
      isTurbo: false, // fields of the managed API with no local meaning: checked, echoed, ignored
      purpose: 'PURPOSE_PILOT',
      wandbConfig: { enabled: false },
      ...JOB,
    };
    const job = await curl([
      '-X',
      'POST',
      `${base}/supervisedFineTuningJobs?supervisedFineTuningJobId=walk`,
      '-H',
      'Content-Type: application/json',
      '-d',
      JSON.stringify(body),
    ]);
    expect(job).toMatchObject({
      name: 'accounts/local/supervisedFineTuningJobs/walk',
      dataset: body.dataset,
      baseModel: body.baseModel,
      outputModel: 'accounts/local/models/walk-model',
      epochs: 1,
      batchSize: 64,
      isTurbo: false,
      purpose: 'PURPOSE_PILOT',
      wandbConfig: { enabled: false },
    });
    expect(['JOB_STATE_PENDING', 'JOB_STATE_VALIDATING']).toContain(job.state);

    const done = await waitFor('job walk to finish', async () => {
      const j = await curl([`${base}/supervisedFineTuningJobs/walk`]);
      return ['JOB_STATE_COMPLETED', 'JOB_STATE_FAILED'].includes(j.state) ? j : undefined;
    });
    expect(done.state, JSON.stringify(done.status)).toBe('JOB_STATE_COMPLETED');
    expect(done.jobProgress.percent).toBe(100);
    expect(done.completedTime).toBeTruthy();

    const models = await curl([`${base}/models`]);
    expect(models.models.map((m: { name: string }) => m.name)).toEqual(['accounts/local/models/walk-model']);
    expect(models.totalSize).toBe(1);
    expect(models.models[0]).toMatchObject({
      kind: 'HF_PEFT_ADDON',
      state: 'READY',
      peftDetails: { baseModel: body.baseModel, r: 8 },
    });
    const base2 = await curl([`${srv.url}/v1/accounts/fireworks/models`]);
    expect(base2.models.map((m: { name: string }) => m.name).sort()).toEqual([
      'accounts/fireworks/models/lorasft-demo',
      'accounts/fireworks/models/tiny-qwen3',
    ]);

    const ep = await curl([`${base}/models/walk-model:getDownloadEndpoint`]);
    const dl = path.join(fx.root, 'curl-download');
    fs.mkdirSync(dl);
    for (const [file, url] of Object.entries(ep.filenameToSignedUrls as Record<string, string>)) {
      await run('curl', ['-sS', '--fail', '-o', path.join(dl, file), url]); // a signed URL needs no key
    }
    const a = loadAdapter(dl);
    expect(a.cfg.rank).toBe(8);
    expect(
      fs
        .readFileSync(path.join(dl, 'adapter_model.safetensors'))
        .equals(fs.readFileSync(path.join(jobDir(data, 'walk'), 'out/adapter_model.safetensors'))),
    ).toBe(true);

    // Continued training from the output model: warmStartFrom takes the addon, its base model comes with it.
    const warm = await curl([
      '-X',
      'POST',
      `${base}/supervisedFineTuningJobs?supervisedFineTuningJobId=warm`,
      '-H',
      'Content-Type: application/json',
      '-d',
      JSON.stringify({
        dataset: 'walk-data',
        warmStartFrom: 'walk-model',
        maxSteps: 1,
        batchSize: 64,
        evalAutoCarveout: false,
      }),
    ]);
    expect(warm).toMatchObject({
      warmStartFrom: 'accounts/local/models/walk-model',
      baseModel: body.baseModel,
      outputModel: 'accounts/local/models/warm',
    });
    const w = await waitFor('job warm to finish', async () => {
      const j = await curl([`${base}/supervisedFineTuningJobs/warm`]);
      return ['JOB_STATE_COMPLETED', 'JOB_STATE_FAILED'].includes(j.state) ? j : undefined;
    });
    expect(w.state, JSON.stringify(w.status)).toBe('JOB_STATE_COMPLETED');
    expect((await curl([`${base}/models/warm`])).peftDetails).toMatchObject({ baseModel: body.baseModel, r: 8 });
  });

  it('the large-file path: :getUploadEndpoint, PUT to the signed URL, :validateUpload', async () => {
    const base = `${srv.url}/v1/accounts/local`;
    await curl([
      '-X',
      'POST',
      `${base}/datasets`,
      '-H',
      'Content-Type: application/json',
      '-d',
      JSON.stringify({ datasetId: 'big-data', dataset: { userUploaded: {} } }),
    ]);
    const size = fs.statSync(fx.train).size;
    const ep = await curl([
      '-X',
      'POST',
      `${base}/datasets/big-data:getUploadEndpoint`,
      '-H',
      'Content-Type: application/json',
      '-d',
      JSON.stringify({ filenameToSize: { 'train.jsonl': size } }),
    ]);
    const url = ep.filenameToSignedUrls['train.jsonl'];
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/upload\/accounts\/local\/datasets\/big-data\?/);
    await run('curl', ['-sS', '--fail-with-body', '-X', 'PUT', '--upload-file', fx.train, url]); // signed: no key
    const ds = await curl([
      '-X',
      'POST',
      `${base}/datasets/big-data:validateUpload`,
      '-H',
      'Content-Type: application/json',
      '-d',
      '{}',
    ]);
    expect(ds).toMatchObject({ state: 'READY', exampleCount: '12' });
    expect(fs.readFileSync(path.join(data, 'datasets/local/big-data/data.jsonl'))).toEqual(fs.readFileSync(fx.train));
    expect(fs.readdirSync(path.join(data, 'datasets/local/big-data'))).toEqual(['data.jsonl']);
  });

  it('through the client verbs, as firectl', async () => {
    const env = { ...process.env, LORASFT_API_BASE: srv.url, LORASFT_API_KEY: KEY };
    const cli = async (...args: string[]) =>
      (await run(process.execPath, [BIN, ...args], { env, cwd: fx.root })).stdout;
    expect(await cli('dataset', 'create', 'verb-data', fx.train)).toMatch(/State:\s+READY[\s\S]*Example Count:\s+12/);
    expect(await cli('dataset', 'list')).toMatch(/verb-data\s+READY\s+12/);
    // --jinja-template FILE: the client reads the file and sends its text; a broken one is named by its line
    const template = JSON.parse(fs.readFileSync(path.join(fx.model, 'tokenizer_config.json'), 'utf8')).chat_template;
    fs.writeFileSync(path.join(fx.root, 'tpl.jinja'), template);
    fs.writeFileSync(path.join(fx.root, 'broken.jinja'), '{% for m in messages %}\n{{ m.content }\n{% endfor %}\n');
    const broken = await run(
      process.execPath,
      [BIN, 'sftj', 'create', '--base-model', 'accounts/fireworks/models/tiny-qwen3', '--dataset', 'verb-data'].concat([
        '--jinja-template',
        'broken.jinja',
      ]),
      { env, cwd: fx.root },
    ).catch((e) => e);
    expect([broken.code, broken.stderr]).toEqual([
      1,
      'error: broken.jinja:2: chat template does not parse: Parser Error: Expected closing expression token. CloseCurlyBracket !== CloseExpression.\n',
    ]);
    // a bad value in --config is named by its line before anything is sent, as lorasft train names it
    fs.writeFileSync(path.join(fx.root, 'neg.json'), '{\n  "epochs": -1\n}\n');
    const neg = await run(process.execPath, [BIN, 'sftj', 'create', '--dataset', 'verb-data', '--config', 'neg.json'], {
      env,
      cwd: fx.root,
    }).catch((e) => e);
    expect([neg.code, neg.stderr]).toEqual([1, 'error: neg.json:2: epochs must be > 0, got -1\n']);
    // a local file where the server takes a dataset id: the command that uploads it
    const local = await run(process.execPath, [BIN, 'sftj', 'create', '--dataset', fx.train], { env }).catch((e) => e);
    expect([local.code, local.stderr]).toEqual([
      1,
      `error: --dataset: ${fx.train} is a local file; the server takes a dataset id: \`lorasft dataset create my-data ${fx.train}\`, then --dataset my-data\n`,
    ]);
    const spaced = path.join(fx.root, 'my data.jsonl'); // the printed command quotes it
    fs.copyFileSync(fx.train, spaced);
    const local2 = await run(process.execPath, [BIN, 'sftj', 'create', '--dataset', spaced], { env }).catch((e) => e);
    expect(local2.stderr).toContain(`\`lorasft dataset create my-data '${spaced}'\``);
    // firectl's W&B flags: taken, and said to be ignored (the request here fails after that: no such dataset)
    const wb = await run(process.execPath, [BIN, 'sftj', 'create', '--dataset', 'nope', '--wandb-project', 'p'], {
      env,
    }).catch((e) => e);
    expect(wb.stderr).toMatch(/^notice: --wandb-\* are accepted and ignored: metrics go to the job's metrics\.jsonl/);
    fs.writeFileSync(path.join(fx.root, 'local.json'), `{\n  "dataset": ${JSON.stringify(fx.train)}\n}\n`);
    const inFile = await run(process.execPath, [BIN, 'sftj', 'create', '--config', 'local.json'], {
      env,
      cwd: fx.root,
    }).catch((e) => e);
    expect(inFile.stderr).toMatch(/^error: local\.json:2: .* is a local file; the server takes a dataset id: /);
    fs.writeFileSync(
      path.join(fx.root, 'verb.json'),
      '// lorasft sftj create --config verb.json ...\n{"batchSize": 64, "learningRate": 0.01, "epochs": 3}\n',
    );
    const created = JSON.parse(
      await cli(
        'sftj',
        'create',
        '--base-model',
        'accounts/fireworks/models/tiny-qwen3',
        '--dataset',
        'verb-data',
        '--output-model',
        'verb-model',
        '--job-id',
        'verb-job',
        '--config',
        'verb.json', // a request body; the flags override it
        '--epochs',
        '1',
        '--no-eval-auto-carveout',
        '--jinja-template',
        'tpl.jinja',
        ...['--wandb-entity', 'my-org', '--wandb-api-key', 'xxx', '--wandb-project', 'My Project'], // the guide's
        '--json',
      ),
    );
    expect(created).toMatchObject({
      name: 'accounts/local/supervisedFineTuningJobs/verb-job',
      dataset: 'accounts/local/datasets/verb-data',
      jinjaTemplate: template,
      batchSize: 64,
      learningRate: 0.01,
      epochs: 1,
    });
    expect(created.wandbConfig).toEqual({ enabled: true, entity: 'my-org', project: 'My Project' }); // no key kept
    await waitFor(
      'sftj get to say COMPLETED',
      async () => /State:\s+JOB_STATE_COMPLETED/.test(await cli('sftj', 'get', 'verb-job')) || undefined,
    );
    expect(await cli('sftj', 'list', '--filter', 'state=JOB_STATE_COMPLETED')).toMatch(
      /verb-job\s+COMPLETED[\s\S]*walk\s+COMPLETED/,
    ); // newest first
    expect(await cli('model', 'list')).toMatch(/verb-model\s+HF_PEFT_ADDON\s+READY/);
    expect(await cli('model', 'get', 'verb-model')).toMatch(/Kind:\s+HF_PEFT_ADDON/);
    await cli('model', 'download', 'verb-model', '--out', 'dl');
    expect(loadAdapter(path.join(fx.root, 'dl')).cfg.rank).toBe(8);
    // A file with problems: one error line per problem, nothing kept.
    const bad = path.join(fx.root, 'bad.jsonl');
    fs.writeFileSync(bad, '{"messages": []}\nnot json\n');
    const err = await run(process.execPath, [BIN, 'dataset', 'create', 'bad-data', bad], { env }).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(
      /INVALID_ARGUMENT: bad.jsonl is not a valid dataset[\s\S]*line 1: [\s\S]*line 2: invalid JSON/,
    );
    expect(await cli('dataset', 'list')).not.toMatch(/bad-data/);
    // A missing file or a directory: one line, before any dataset is created.
    for (const [file, why] of [
      ['nope.jsonl', 'no such file'],
      ['dl', 'is a directory'],
    ]) {
      const e = await run(process.execPath, [BIN, 'dataset', 'create', 'no-data', file], { env, cwd: fx.root }).catch(
        (x) => x,
      );
      expect([e.code, e.stderr]).toEqual([1, `error: ${file}: ${why} (the dataset JSONL to upload)\n`]);
    }
    // A file not named *.jsonl (the managed File format): one line with the fix, before any dataset is created.
    fs.copyFileSync(fx.train, path.join(fx.root, 'data.json'));
    const named = await run(process.execPath, [BIN, 'dataset', 'create', 'no-data', 'data.json'], {
      env,
      cwd: fx.root,
    }).catch((x) => x);
    expect([named.code, named.stderr]).toEqual([
      1,
      'error: data.json: not a .jsonl file (a dataset is JSON Lines, one example per line, in a file named *.jsonl); rename it to data.jsonl\n',
    ]);
    expect(await cli('dataset', 'list')).not.toMatch(/no-data/);
    // --out naming a file: one line, the file untouched.
    const onFile = await run(process.execPath, [BIN, 'model', 'download', 'verb-model', '--out', 'tpl.jinja'], {
      env,
      cwd: fx.root,
    }).catch((x) => x);
    expect([onFile.code, onFile.stderr]).toEqual([
      1,
      "error: --out tpl.jinja: is a file; the adapter's files go into a directory\n",
    ]);
    expect(fs.readFileSync(path.join(fx.root, 'tpl.jinja'), 'utf8')).toBe(template);
    await cli('sftj', 'delete', 'verb-job');
    await cli('model', 'delete', 'verb-model');
    await cli('dataset', 'delete', 'verb-data');
    expect(await cli('dataset', 'list')).not.toMatch(/verb-data/);
    expect(fs.existsSync(jobDir(data, 'verb-job'))).toBe(false);
  });
});
