import { describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/index.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  checkpointProblem,
  listCheckpoints,
  loadLatestCheckpoint,
  recoverCheckpoints,
  saveCheckpoint,
  type Checkpoint,
} from '../../src/train/checkpoint.ts';
import { appendMetrics, readMetrics, truncateMetrics } from '../../src/train/metrics.ts';
import { createJob, readJob, setJobState } from '../../src/train/job.ts';
import { resolveConfig } from '../../src/train/config.ts';

function ck(step: number): Checkpoint {
  const data = new Float32Array([step, Math.PI, -1e-20, 3.5e38]);
  return {
    state: {
      step,
      totalSteps: 10,
      bestEvalLoss: 1.25,
      bestStep: step,
      evalsWithoutImprovement: 1,
      inputTokens: 100 * step,
      outputTokens: 40 * step,
      elapsedS: 1.5,
    },
    params: new Map([['a.lora_A.weight', { shape: [2, 2], data }]]),
    adam: {
      step,
      m: new Map([['a.lora_A.weight', data.map((x) => x / 3)]]),
      v: new Map([['a.lora_A.weight', data.map((x) => x / 7)]]),
    },
    best: new Map([['a.lora_A.weight', { shape: [2, 2], data: data.map((x) => -x) }]]),
  };
}

describe('checkpoints, metrics, job', () => {
  const out = tmpDir('ck');
  it('round-trips every byte and keeps the newest N', () => {
    for (const s of [1, 2, 3])
      saveCheckpoint(out, ck(s), (d) => fs.writeFileSync(path.join(d, 'adapter_config.json'), '{}'), 2);
    expect(listCheckpoints(out).map((d) => path.basename(d))).toEqual(['step-000002', 'step-000003']);
    const got = loadLatestCheckpoint(out)!;
    const want = ck(3);
    expect(got.ck.state).toEqual(want.state);
    expect(got.ck.adam.step).toBe(3);
    expect(
      Buffer.from(got.ck.params.get('a.lora_A.weight')!.data.buffer).equals(
        Buffer.from(want.params.get('a.lora_A.weight')!.data.buffer),
      ),
    ).toBe(true);
    expect([...got.ck.adam.v.get('a.lora_A.weight')!]).toEqual([...want.adam.v.get('a.lora_A.weight')!]);
    expect([...got.ck.best!.get('a.lora_A.weight')!.data]).toEqual([...want.best!.get('a.lora_A.weight')!.data]);
    expect(fs.existsSync(path.join(got.dir, 'adapter_config.json'))).toBe(true);
    // Re-saving the same step replaces it in place.
    saveCheckpoint(out, ck(3), () => {}, 2);
    expect(listCheckpoints(out)).toHaveLength(2);
    expect(fs.readdirSync(path.join(out, 'checkpoints')).filter((d) => d.startsWith('.'))).toEqual([]);
  });

  it('a checkpoint that fails its manifest is reported in one line and the previous whole one is used', () => {
    const dir = tmpDir('ck');
    for (const s of [1, 2, 3])
      saveCheckpoint(dir, ck(s), (d) => fs.writeFileSync(path.join(d, 'adapter_config.json'), '{}'), 3);
    const [c1, c2, c3] = listCheckpoints(dir);
    expect(
      JSON.parse(fs.readFileSync(path.join(c3, 'manifest.json'), 'utf8')).files['state.safetensors'].sha256,
    ).toMatch(/^[0-9a-f]{64}$/);
    expect(checkpointProblem(c3)).toBeNull();
    const size = fs.statSync(path.join(c3, 'trainer_state.json')).size;
    fs.truncateSync(path.join(c3, 'trainer_state.json'), 10); // torn trainer_state.json: was a SyntaxError stack trace
    const flip = fs.readFileSync(path.join(c2, 'state.safetensors'));
    flip[flip.length - 1] ^= 1; // same size, other bytes
    fs.writeFileSync(path.join(c2, 'state.safetensors'), flip);
    const warnings: string[] = [];
    const got = loadLatestCheckpoint(dir, (m) => warnings.push(m))!;
    expect(got.dir).toBe(c1);
    expect(got.ck.state.step).toBe(1);
    expect(warnings).toEqual([
      `${c3}: trainer_state.json has 10 bytes, the manifest says ${size}; resuming from step-000001`,
      `${c2}: state.safetensors does not match its sha256 in the manifest; resuming from step-000001`,
    ]);
    fs.rmSync(path.join(c1, 'manifest.json'));
    warnings.length = 0;
    expect(loadLatestCheckpoint(dir, (m) => warnings.push(m))).toBeNull();
    expect(warnings.at(-1)).toBe(
      `${c1}: no manifest.json (incomplete, or written by an older lorasft); no whole checkpoint left: starting again from step 0`,
    );
  });

  it('a resumed run: a newer damaged checkpoint does not take the place of its new ones; a killed write is cleared', () => {
    const dir = tmpDir('ck');
    const adapter = (d: string) => fs.writeFileSync(path.join(d, 'adapter_config.json'), '{}');
    saveCheckpoint(dir, ck(6), adapter, 1);
    const [six] = listCheckpoints(dir);
    fs.appendFileSync(path.join(six, 'trainer_state.json'), ' '); // damaged: the resume starts again from step 0
    const killed = path.join(dir, 'checkpoints', '.tmp-step-000007-999999999'); // SIGKILL while writing step 7
    fs.mkdirSync(killed);
    fs.writeFileSync(path.join(killed, 'state.safetensors'), 'half');
    recoverCheckpoints(dir);
    expect(fs.readdirSync(path.join(dir, 'checkpoints'))).toEqual(['step-000006']);
    expect(loadLatestCheckpoint(dir)).toBeNull();
    // keepCheckpoints 1: step 2 was written and then removed as the oldest, leaving only the damaged step 6.
    saveCheckpoint(dir, ck(2), adapter, 1);
    expect(listCheckpoints(dir).map((d) => path.basename(d))).toEqual(['step-000002']);
    expect(loadLatestCheckpoint(dir)!.ck.state.step).toBe(2);
  });

  it('killed between the renames that replace a checkpoint of the same step: the whole one goes back into place', () => {
    const dir = tmpDir('ck');
    const adapter = (d: string) => fs.writeFileSync(path.join(d, 'adapter_config.json'), '{}');
    saveCheckpoint(dir, ck(2), adapter, 2);
    saveCheckpoint(dir, ck(3), adapter, 2);
    const [, three] = listCheckpoints(dir);
    fs.cpSync(three, path.join(dir, 'checkpoints', '.tmp-step-000003-999999999'), { recursive: true }); // the new one
    fs.renameSync(three, `${three}.old-999999999`); // the old one moved aside
    recoverCheckpoints(dir);
    expect(fs.readdirSync(path.join(dir, 'checkpoints'))).toEqual(['step-000002', 'step-000003']);
    expect(loadLatestCheckpoint(dir)!.ck.state.step).toBe(3);
    fs.renameSync(three, `${three}.old-999999999`); // only the old one left
    recoverCheckpoints(dir);
    expect(loadLatestCheckpoint(dir)!.ck.state.step).toBe(3);
  });

  it('a failed checkpoint write leaves no temp dir and names the file', () => {
    const dir = tmpDir('ck');
    const fail = () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    };
    expect(() => saveCheckpoint(dir, ck(1), fail, 2)).toThrow(/ENOSPC/);
    expect(fs.readdirSync(path.join(dir, 'checkpoints'))).toEqual([]);
  });

  it('drops metrics rows past the resume step and skips a torn line', () => {
    for (let s = 1; s <= 5; s++)
      appendMetrics(out, {
        step: s,
        epoch: s / 5,
        train_loss: 1 / s,
        lr: 1e-4,
        grad_norm: 1,
        tokens_per_s: 10,
        tokens: 5,
        time: '',
      });
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
    expect(j).toMatchObject({
      name: 'accounts/local/supervisedFineTuningJobs/j1',
      state: 'JOB_STATE_COMPLETED',
      status: { code: 'OK', message: 'done' },
      dataset: 'd.jsonl',
      displayName: 'demo',
      epochs: 1,
      loraRank: 8,
      createTime: '2026-01-01T00:00:00.000Z',
      completedTime: '2026-01-01T00:00:02.000Z',
    });
    expect(j).not.toHaveProperty('seed'); // local extras live in resolved_config.json
  });
});
