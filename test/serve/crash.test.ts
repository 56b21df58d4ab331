// A killed server loses nothing: after SIGKILL mid-job and a restart, the queued job stays queued and the running
// one resumes from its checkpoint to the same adapter bytes as an uninterrupted run. A trainer that crashes (here
// killed by SIGKILL, as by the OOM killer) ends its job FAILED with the reason and leaves the server serving; a
// cancelled or failed job resumes; a running job deleted is stopped first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Fixture } from '../train/fixture.ts';
import {
  jobDir,
  request,
  runsLog,
  startServe,
  stopAllServers,
  waitFor,
  waitForJob,
  type Serve,
  serveFixture,
} from './helpers.ts';

const A = '/v1/accounts/local';
let fx: Fixture;
let data: string;
let srv: Serve;
const ARGS = ['--workers', '1', '--threads-per-job', '1', '--no-demo-model'];
// A six-step job trains in well under a second, so the tests never race it: these jobs pause after a checkpoint
// (src/util/testhooks.ts) until a signal arrives; a resumed run starts past the paused step.
const HOOKS = {
  LORASFT_TEST_HOOKS:
    'pause@killed/after-step-2,pause@crash/after-step-2,pause@cancel/after-step-1,pause@orphan/after-step-1,' +
    'pause@late/finished',
};

beforeAll(async () => {
  ({ fx, data } = serveFixture('tiny'));
  srv = await startServe(data, ARGS, HOOKS);
  const b = 'bnd';
  const raw = Buffer.concat([
    Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="t.jsonl"\r\n\r\n`),
    fs.readFileSync(fx.train),
    Buffer.from(`\r\n--${b}--\r\n`),
  ]);
  expect((await request(srv.url, 'POST', `${A}/datasets`, { body: { datasetId: 'train' } })).status).toBe(200);
  for (const id of ['train', 'gone']) {
    if (id !== 'train')
      expect((await request(srv.url, 'POST', `${A}/datasets`, { body: { datasetId: id } })).status).toBe(200);
    const up = await request(srv.url, 'POST', `${A}/datasets/${id}:upload`, {
      raw,
      headers: { 'content-type': `multipart/form-data; boundary=${b}` },
    });
    expect(up.status, up.text).toBe(200);
  }
});
afterAll(stopAllServers);

/** The same job every time (dropout on, so the resumed masks must match too), checkpointed every step. */
async function createJob(id: string, dataset = 'train'): Promise<void> {
  const body = {
    dataset,
    baseModel: 'tiny',
    batchSize: 64,
    learningRate: 0.01,
    epochs: 1,
    evalAutoCarveout: false,
    seed: 3,
    loraDropout: 0.1,
    checkpointEverySteps: 1,
  };
  const r = await request(srv.url, 'POST', `${A}/supervisedFineTuningJobs?supervisedFineTuningJobId=${id}`, { body });
  expect(r.status, r.text).toBe(200);
}

/** Job `id` paused after step `step`'s checkpoint. */
const paused = (id: string, step: number) => {
  const out = path.join(jobDir(data, id), 'out');
  const marker = path.join(out, '.test-paused');
  return (
    fs.existsSync(marker) &&
    fs.readFileSync(marker, 'utf8') === `after-step-${step}` &&
    fs.existsSync(path.join(out, 'checkpoints', `step-${String(step).padStart(6, '0')}`))
  );
};
const adapter = (id: string) => fs.readFileSync(path.join(data, 'models/local', id, 'adapter_model.safetensors'));
/** The adapter of an uninterrupted run of the job: 'queued' from the first test, else a run of its own. */
async function reference(): Promise<Buffer> {
  if (!fs.existsSync(path.join(data, 'models/local/queued'))) {
    await createJob('ref');
    expect((await waitForJob(srv.url, undefined, 'ref', ['JOB_STATE_COMPLETED', 'JOB_STATE_FAILED'])).state).toBe(
      'JOB_STATE_COMPLETED',
    );
    return adapter('ref');
  }
  return adapter('queued');
}
const trainerPid = (id: string) =>
  Number(
    /pid (\d+)/.exec(
      runsLog(data, id)
        .filter((l) => l.startsWith('start'))
        .at(-1) ?? '',
    )?.[1],
  );
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const act = async (id: string, verb: string) => {
  const r = await request(
    srv.url,
    verb === 'delete' ? 'DELETE' : 'POST',
    `${A}/supervisedFineTuningJobs/${id}${verb === 'delete' ? '' : `:${verb}`}`,
    verb === 'delete' ? {} : { body: {} },
  );
  expect(r.status, r.text).toBe(200);
  return r.json;
};

// Generous: a loaded 2-core machine runs these several times slower than an idle one.
describe('lorasft serve: crashes, cancel, resume', { timeout: 900_000 }, () => {
  it('SIGKILL of the server mid-job: queued stays queued, running resumes to the same adapter bytes', async () => {
    await createJob('killed');
    await createJob('queued');
    await waitFor('job killed to pause after step 2', () => paused('killed', 2), 240_000, 100);
    const pid = trainerPid('killed');
    await srv.kill();
    await waitFor(`the orphaned trainer ${pid} to stop`, () => !alive(pid), 60_000, 100);
    srv = await startServe(data, ARGS, HOOKS);
    const q = await request(srv.url, 'GET', `${A}/supervisedFineTuningJobs/queued`);
    expect(q.json.state).toBe('JOB_STATE_PENDING');
    const k = await waitForJob(srv.url, undefined, 'killed', ['JOB_STATE_COMPLETED', 'JOB_STATE_FAILED']);
    expect(k.state, JSON.stringify(k.status)).toBe('JOB_STATE_COMPLETED');
    const runs = runsLog(data, 'killed').filter((l) => l.startsWith('start'));
    expect(runs).toHaveLength(2);
    expect(runs[1]).toMatch(/--resume$/);
    const q2 = await waitForJob(srv.url, undefined, 'queued', ['JOB_STATE_COMPLETED', 'JOB_STATE_FAILED']);
    expect(q2.state).toBe('JOB_STATE_COMPLETED');
    expect(runsLog(data, 'queued').filter((l) => l.startsWith('start'))).toHaveLength(1);
    // The uninterrupted run of the same job: the same adapter bytes.
    expect(adapter('killed').equals(adapter('queued'))).toBe(true);
  });

  it('a trainer killed by SIGKILL: FAILED with the reason, the server unharmed; :resume completes it identically', async () => {
    await createJob('crash');
    await waitFor('job crash to pause after step 2', () => paused('crash', 2), 240_000, 100);
    process.kill(trainerPid('crash'), 'SIGKILL');
    const f = await waitForJob(srv.url, undefined, 'crash', ['JOB_STATE_FAILED', 'JOB_STATE_COMPLETED']);
    expect(f.state).toBe('JOB_STATE_FAILED');
    expect(f.status.message).toMatch(/the trainer process was killed by SIGKILL/);
    expect((await request(srv.url, 'GET', '/healthz')).status).toBe(200);
    expect(['JOB_STATE_PENDING', 'JOB_STATE_VALIDATING']).toContain((await act('crash', 'resume')).state);
    const c = await waitForJob(srv.url, undefined, 'crash', ['JOB_STATE_COMPLETED', 'JOB_STATE_FAILED']);
    expect(c.state, JSON.stringify(c.status)).toBe('JOB_STATE_COMPLETED');
    expect(adapter('crash').equals(await reference())).toBe(true);
  });

  it(':cancel checkpoints and ends CANCELLED, :resume completes it identically; deleting a running job stops it first', async () => {
    await createJob('cancel');
    await waitFor('job cancel to pause after step 1', () => paused('cancel', 1), 240_000, 100);
    expect(['JOB_STATE_CANCELLING', 'JOB_STATE_CANCELLED']).toContain((await act('cancel', 'cancel')).state);
    const x = await waitForJob(srv.url, undefined, 'cancel', [
      'JOB_STATE_CANCELLED',
      'JOB_STATE_COMPLETED',
      'JOB_STATE_FAILED',
    ]);
    expect(x.state).toBe('JOB_STATE_CANCELLED');
    expect(x.status.code).toBe('CANCELLED');
    await act('cancel', 'resume');
    const c = await waitForJob(srv.url, undefined, 'cancel', ['JOB_STATE_COMPLETED', 'JOB_STATE_FAILED']);
    expect(c.state, JSON.stringify(c.status)).toBe('JOB_STATE_COMPLETED');
    expect(adapter('cancel').equals(await reference())).toBe(true);

    await createJob('doomed');
    await waitFor('job doomed to start', () => trainerPid('doomed') > 0, 240_000, 100);
    const pid = trainerPid('doomed');
    await act('doomed', 'delete');
    expect(alive(pid)).toBe(false);
    expect((await request(srv.url, 'GET', `${A}/supervisedFineTuningJobs/doomed`)).status).toBe(404);
    expect(fs.existsSync(jobDir(data, 'doomed'))).toBe(false);
  });

  it('a :cancel that reaches the trainer after it finished leaves the job COMPLETED with its model', async () => {
    await createJob('late');
    const marker = path.join(jobDir(data, 'late'), 'out', '.test-paused');
    await waitFor(
      'job late to finish and pause',
      () => fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === 'finished',
      240_000,
      100,
    );
    await act('late', 'cancel');
    const j = await waitForJob(srv.url, undefined, 'late', [
      'JOB_STATE_COMPLETED',
      'JOB_STATE_CANCELLED',
      'JOB_STATE_FAILED',
    ]);
    expect(j.state, JSON.stringify(j.status)).toBe('JOB_STATE_COMPLETED');
    expect((await request(srv.url, 'GET', `${A}/models/late`)).json.state).toBe('READY');
    expect(adapter('late').equals(await reference())).toBe(true);
  });

  it(':resume of a job whose dataset was deleted is a 400 naming it, and the job stays CANCELLED', async () => {
    await createJob('orphan', 'gone');
    await waitFor('job orphan to pause after step 1', () => paused('orphan', 1), 240_000, 100);
    await act('orphan', 'cancel');
    await waitForJob(srv.url, undefined, 'orphan', ['JOB_STATE_CANCELLED', 'JOB_STATE_FAILED']);
    expect((await request(srv.url, 'DELETE', `${A}/datasets/gone`)).status).toBe(200);
    const r = await request(srv.url, 'POST', `${A}/supervisedFineTuningJobs/orphan:resume`, { body: {} });
    expect([r.status, r.json.error?.message]).toEqual([
      400,
      'job accounts/local/supervisedFineTuningJobs/orphan: its dataset accounts/local/datasets/gone no longer exists',
    ]);
    expect((await request(srv.url, 'GET', `${A}/supervisedFineTuningJobs/orphan`)).json.state).toBe(
      'JOB_STATE_CANCELLED',
    );
  });
});
