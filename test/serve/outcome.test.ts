// A job's final state from its trainer's exit: job.json is trusted only when this run wrote it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { logFile, outcome, outDir } from '../../src/serve/worker.ts';

function jobDirWith(state: string, updateTime: string, log: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outcome-'));
  fs.mkdirSync(outDir(dir));
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
