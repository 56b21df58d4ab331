// A job's final state from its trainer's exit: job.json is trusted only when this run wrote it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { logFile, outcome, outDir, publicText } from '../../src/serve/worker.ts';

function jobDirWith(state: string, updateTime: string, log: string): string {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'outcome-')), 'jobs', 'local', 'j');
  fs.mkdirSync(outDir(dir), { recursive: true });
  const status = { code: 'CANCELLED', message: 'cancelled by SIGTERM after step 10/13' };
  fs.writeFileSync(path.join(outDir(dir), 'job.json'), JSON.stringify({ state, status, updateTime }));
  fs.writeFileSync(logFile(dir), log);
  return dir;
}

describe('outcome', () => {
  it('takes the final state this run wrote into job.json', () => {
    const dir = jobDirWith('JOB_STATE_CANCELLED', '2026-11-30T10:00:05.000Z', '');
    expect(outcome(dir, '2026-11-30T10:00:00.000Z', 130, null)).toEqual({
      state: 'JOB_STATE_CANCELLED',
      status: { code: 'CANCELLED', message: 'cancelled by SIGTERM after step 10/13' },
    });
  });

  it("a run that exits before writing job.json FAILS with its log, not the previous run's state", () => {
    const dir = jobDirWith('JOB_STATE_CANCELLED', '2026-11-30T10:00:05.000Z', 'error: /d/data.jsonl: no such file\n');
    expect(outcome(dir, '2026-11-30T11:00:00.000Z', 1, null)).toEqual({
      state: 'JOB_STATE_FAILED',
      status: {
        code: 'INTERNAL',
        message: 'the trainer process exited with code 1; last output: error: /d/data.jsonl: no such file',
      },
    });
  });
});

describe('publicText', () => {
  it('shows paths under the data dir as the resources they hold, and a resume command as the API call', () => {
    const data = '/srv/lorasft data';
    const job = `${data}/jobs/local/j1`;
    const cases: Array<[string, string]> = [
      [
        `${data}/datasets/local/small-data/data.jsonl:1: chat template error: boom`,
        'accounts/local/datasets/small-data:1: chat template error: boom',
      ],
      [`resuming from ${job}/out/checkpoints/step-000029`, 'resuming from checkpoint step-000029'],
      [
        `cancelled by SIGTERM after step 3/6; resume with: lorasft train --resume '${job}/out'`,
        'cancelled by SIGTERM after step 3/6; resume with: POST /v1/accounts/local/supervisedFineTuningJobs/j1:resume (lorasft sftj resume j1)',
      ],
      [
        // lorasft on PATH is not this checkout: the trainer prints node and its bin path
        `cancelled by SIGINT after step 3/6; resume with: node '/opt/my lorasft/bin/lorasft.js' train --resume '${job}/out'`,
        'cancelled by SIGINT after step 3/6; resume with: POST /v1/accounts/local/supervisedFineTuningJobs/j1:resume (lorasft sftj resume j1)',
      ],
      [
        `x: cannot write (ENOSPC); once it can be written, resume with: node /opt/lorasft/bin/lorasft.js train --resume '${job}/out'`,
        'x: cannot write (ENOSPC); once it can be written, resume with: POST /v1/accounts/local/supervisedFineTuningJobs/j1:resume (lorasft sftj resume j1)',
      ],
      [
        `${data}/models/local/m/adapter_config.json: no such file`,
        'accounts/local/models/m/adapter_config.json: no such file',
      ],
      [`${data}/lorasft.db is locked`, '<data dir>/lorasft.db is locked'],
      ['/elsewhere/x.jsonl: no such file', '/elsewhere/x.jsonl: no such file'],
    ];
    for (const [from, to] of cases) expect(publicText(job, from)).toBe(to);
  });
});
