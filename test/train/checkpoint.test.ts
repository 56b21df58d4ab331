import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { listCheckpoints, loadLatestCheckpoint, saveCheckpoint, type Checkpoint } from '../../src/train/checkpoint.ts';
import { appendMetrics, readMetrics, truncateMetrics } from '../../src/train/metrics.ts';
import { createJob, readJob, setJobState } from '../../src/train/job.ts';
import { resolveConfig } from '../../src/train/config.ts';

function ck(step: number): Checkpoint {
  const data = new Float32Array([step, Math.PI, -1e-20, 3.5e38]);
  return {
    state: { step, totalSteps: 10, bestEvalLoss: 1.25, bestStep: step, evalsWithoutImprovement: 1, inputTokens: 100 * step, outputTokens: 40 * step, elapsedS: 1.5 },
    params: new Map([['a.lora_A.weight', { shape: [2, 2], data }]]),
    adam: { step, m: new Map([['a.lora_A.weight', data.map((x) => x / 3)]]), v: new Map([['a.lora_A.weight', data.map((x) => x / 7)]]) },
    best: new Map([['a.lora_A.weight', { shape: [2, 2], data: data.map((x) => -x) }]]),
  };
}

describe('checkpoints, metrics, job', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lorasft-ck-'));
  it('round-trips every byte and keeps the newest N', () => {
    for (const s of [1, 2, 3]) saveCheckpoint(out, ck(s), (d) => fs.writeFileSync(path.join(d, 'adapter_config.json'), '{}'), 2);
    expect(listCheckpoints(out).map((d) => path.basename(d))).toEqual(['step-000002', 'step-000003']);
    const got = loadLatestCheckpoint(out)!;
    const want = ck(3);
    expect(got.ck.state).toEqual(want.state);
    expect(got.ck.adam.step).toBe(3);
    expect(Buffer.from(got.ck.params.get('a.lora_A.weight')!.data.buffer).equals(Buffer.from(want.params.get('a.lora_A.weight')!.data.buffer))).toBe(true);
    expect([...got.ck.adam.v.get('a.lora_A.weight')!]).toEqual([...want.adam.v.get('a.lora_A.weight')!]);
    expect([...got.ck.best!.get('a.lora_A.weight')!.data]).toEqual([...want.best!.get('a.lora_A.weight')!.data]);
    expect(fs.existsSync(path.join(got.dir, 'adapter_config.json'))).toBe(true);
    // Re-saving the same step replaces it in place.
    saveCheckpoint(out, ck(3), () => {}, 2);
    expect(listCheckpoints(out)).toHaveLength(2);
    expect(fs.readdirSync(path.join(out, 'checkpoints')).filter((d) => d.startsWith('.'))).toEqual([]);
  });

  it('drops metrics rows past the resume step and skips a torn line', () => {
    for (let s = 1; s <= 5; s++) appendMetrics(out, { step: s, epoch: s / 5, train_loss: 1 / s, lr: 1e-4, grad_norm: 1, tokens_per_s: 10, tokens: 5, time: '' });
    fs.appendFileSync(path.join(out, 'metrics.jsonl'), '{"step": 6, "ep');
    expect(readMetrics(out)).toHaveLength(5);
    truncateMetrics(out, 3);
    expect(readMetrics(out).map((r) => r.step)).toEqual([1, 2, 3]);
  });

  it('writes job.json as the REST response object', () => {
    const cfg = resolveConfig({ jobId: 'j1', dataset: 'd.jsonl', displayName: 'demo' });
    const job = createJob(cfg, new Date('2026-01-01T00:00:00Z'));
    setJobState(job, 'JOB_STATE_RUNNING', 'training', out, { now: new Date('2026-01-01T00:00:01Z') });
    setJobState(job, 'JOB_STATE_COMPLETED', 'done', out, { now: new Date('2026-01-01T00:00:02Z') });
    const j = readJob(out);
    expect(j).toMatchObject({ name: 'accounts/local/supervisedFineTuningJobs/j1', state: 'JOB_STATE_COMPLETED', status: { code: 'OK', message: 'done' }, dataset: 'd.jsonl', displayName: 'demo', epochs: 1, loraRank: 8, createTime: '2026-01-01T00:00:00.000Z', completedTime: '2026-01-01T00:00:02.000Z' });
    expect(j).not.toHaveProperty('seed'); // local extras live in resolved_config.json
  });
});
