// 20 jobs queued on a server with 2 workers: each runs exactly once, never more than 2 at a time, first in first
// out, and each completes with its output model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Fixture } from '../train/fixture.ts';
import {
  request,
  runsLog,
  sliceDataset,
  startServe,
  stopAllServers,
  waitFor,
  type Serve,
  serveFixture,
} from './helpers.ts';

const A = '/v1/accounts/local';
const N = 20;
let fx: Fixture;
let data: string;
let srv: Serve;

beforeAll(async () => {
  ({ fx, data } = serveFixture('tiny'));
  srv = await startServe(data, ['--workers', '2', '--threads-per-job', '1', '--no-demo-model']);
  const tiny = sliceDataset(fx.train, path.join(fx.root, 'three.jsonl'), 3);
  const boundary = 'b0und';
  const raw = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="three.jsonl"\r\n\r\n`),
    fs.readFileSync(tiny),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  expect((await request(srv.url, 'POST', `${A}/datasets`, { body: { datasetId: 'three' } })).status).toBe(200);
  const up = await request(srv.url, 'POST', `${A}/datasets/three:upload`, {
    raw,
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  });
  expect(up.status, up.text).toBe(200);
});
afterAll(stopAllServers);

// Generous: a loaded 2-core machine runs these several times slower than an idle one.
describe('lorasft serve: the queue', { timeout: 900_000 }, () => {
  it(`${N} jobs on 2 workers: each runs exactly once, at most 2 at a time, FIFO`, async () => {
    const ids = Array.from({ length: N }, (_, i) => `q${String(i).padStart(2, '0')}`);
    for (const id of ids) {
      const r = await request(srv.url, 'POST', `${A}/supervisedFineTuningJobs?supervisedFineTuningJobId=${id}`, {
        body: {
          dataset: 'three',
          baseModel: 'tiny',
          maxSteps: 1,
          batchSize: 64,
          evalAutoCarveout: false,
          learningRate: 0.01,
        },
      });
      expect(r.status, r.text).toBe(200);
    }
    const all = await waitFor(
      'all jobs to finish',
      async () => {
        const r = await request(srv.url, 'GET', `${A}/supervisedFineTuningJobs?pageSize=100`);
        const jobs = r.json.supervisedFineTuningJobs as { name: string; state: string; status: unknown }[];
        return jobs.every((j) => ['JOB_STATE_COMPLETED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(j.state))
          ? jobs
          : undefined;
      },
      840_000,
      500,
    );
    expect(all.map((j) => j.name.split('/').pop())).toEqual([...ids].reverse()); // newest first
    for (const j of all) expect(j.state, JSON.stringify(j.status)).toBe('JOB_STATE_COMPLETED');

    // Exactly one run per job; at most 2 trainers alive at any time; started in creation order.
    const events: { t: number; d: number }[] = [];
    const starts: [number, string][] = [];
    for (const id of ids) {
      const lines = runsLog(data, id);
      expect(
        lines.filter((l) => l.startsWith('start ')),
        `${id}: ${lines.join('; ')}`,
      ).toHaveLength(1);
      expect(
        lines.filter((l) => l.startsWith('exit ')),
        id,
      ).toHaveLength(1);
      const t0 = Date.parse(lines[0].split(' ')[1]);
      const t1 = Date.parse(lines[1].split(' ')[1]);
      events.push({ t: t0, d: +1 }, { t: t1, d: -1 });
      starts.push([t0, id]);
    }
    events.sort((a, b) => a.t - b.t || a.d - b.d); // an exit and a start at the same ms: the exit first
    let live = 0;
    let peak = 0;
    for (const e of events) peak = Math.max(peak, (live += e.d));
    expect(peak).toBe(2);
    expect(starts.sort((a, b) => a[0] - b[0]).map((s) => s[1])).toEqual(ids);

    const models = await request(srv.url, 'GET', `${A}/models?pageSize=100`);
    const addons = models.json.models.filter((m: { kind: string }) => m.kind === 'HF_PEFT_ADDON');
    expect(addons.map((m: { name: string }) => m.name).sort()).toEqual(ids.map((id) => `accounts/local/models/${id}`));
    // pageSize / pageToken walk the same list.
    const seen: string[] = [];
    let token = '';
    for (let i = 0; i < 10; i++) {
      const r = await request(
        srv.url,
        'GET',
        `${A}/supervisedFineTuningJobs?pageSize=7${token ? `&pageToken=${token}` : ''}`,
      );
      expect(r.json.totalSize).toBe(N);
      seen.push(...r.json.supervisedFineTuningJobs.map((j: { name: string }) => j.name.split('/').pop()));
      token = r.json.nextPageToken;
      if (!token) break;
    }
    expect(seen).toEqual([...ids].reverse());
  });
});
