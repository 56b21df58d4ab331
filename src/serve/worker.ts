// One job in its own child process: the existing trainer, `lorasft train --config JOB/config.json` for a fresh run
// or `lorasft train --resume JOB/out` once the trainer has written its job there (so a job killed at any point
// continues from its last checkpoint to the same adapter bytes). Output goes to JOB/train.log; a crash, an OOM kill
// or a bad dataset only ends this process, and `outcome` turns its exit into the job's final state.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { TERMINAL_STATES, type Job } from '../train/job.ts';
import { LORASFT_BIN } from './upload.ts';

const GUARD = pathToFileURL(path.join(path.dirname(new URL(import.meta.url).pathname), 'guard.mjs')).href;

export const outDir = (jobDir: string) => path.join(jobDir, 'out');
export const logFile = (jobDir: string) => path.join(jobDir, 'train.log');

/** The trainer's arguments: resume once the trainer has set up OUT (its resolved config and job.json exist). */
function trainerArgs(jobDir: string): string[] {
  const out = outDir(jobDir);
  const started = fs.existsSync(path.join(out, 'resolved_config.json')) && fs.existsSync(path.join(out, 'job.json'));
  return started ? ['train', '--resume', out] : ['train', '--config', path.join(jobDir, 'config.json'), '--overwrite'];
}

/** Starts the trainer for the job in `jobDir`; one `start` line per run is appended to JOB/runs.log. */
export function startTrainer(jobDir: string): ChildProcess {
  const args = trainerArgs(jobDir);
  const log = fs.openSync(logFile(jobDir), 'a');
  try {
    const child = spawn(process.execPath, ['--import', GUARD, LORASFT_BIN, ...args], {
      cwd: jobDir,
      stdio: ['ignore', log, log, 'ipc'],
      env: { ...process.env, LORASFT_JOB_DIR: jobDir },
    });
    fs.appendFileSync(path.join(jobDir, 'runs.log'), `start ${new Date().toISOString()} pid ${child.pid} ${args[1]}\n`);
    return child;
  } finally {
    fs.closeSync(log);
  }
}

/** Appends the trainer's exit to JOB/runs.log (a job's runs, one start and one exit line each). */
export function noteExit(jobDir: string, code: number | null, signal: string | null): void {
  try {
    fs.appendFileSync(
      path.join(jobDir, 'runs.log'),
      `exit ${new Date().toISOString()} code ${code} signal ${signal}\n`,
    );
  } catch {
    /* the job was deleted */
  }
}

/** The trainer's job.json, or null while it has none (or it is being replaced). */
export function readTrainerJob(jobDir: string): Job | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(outDir(jobDir), 'job.json'), 'utf8')) as Job;
  } catch {
    return null;
  }
}

/** The last `n` bytes of the trainer's log, as lines without progress-bar redraws. */
function logTail(jobDir: string, n = 2000): string {
  try {
    const fd = fs.openSync(logFile(jobDir), 'r');
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(n, size));
    fs.readSync(fd, buf, 0, buf.length, size - buf.length);
    fs.closeSync(fd);
    return buf
      .toString('utf8')
      .split(/[\r\n]+/)
      .filter(Boolean)
      .slice(-5)
      .join(' | ');
  } catch {
    return '';
  }
}

/**
 * A trainer's message as the API shows it: paths under the data dir (which clients never see) as the resource names
 * they hold: `DATA/datasets/A/ID/data.jsonl:3` -> `accounts/A/datasets/ID:3`, a checkpoint by its step, and so on.
 */
export function publicText(jobDir: string, text: string): string {
  const dataDir = path.resolve(jobDir, '../../..'); // JOB = DATA/jobs/ACCOUNT/ID
  if (dataDir === path.parse(dataDir).root) return text;
  const dd = dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const seg = '([a-z0-9-]+)';
  return text
    .replace(
      // the trainer's resumeCommand: `lorasft train --resume OUT`, or `node BIN train ...` when PATH has no lorasft
      new RegExp(
        `resume with: (?:node (?:'[^']*'|\\S+) |\\S*lorasft\\S* )(?:train )?--resume '?${dd}/jobs/${seg}/${seg}/out'?`,
        'g',
      ),
      'resume with: POST /v1/accounts/$1/supervisedFineTuningJobs/$2:resume (lorasft sftj resume $2)',
    )
    .replace(new RegExp(`${dd}/datasets/${seg}/${seg}/data\\.jsonl`, 'g'), 'accounts/$1/datasets/$2')
    .replace(new RegExp(`${dd}/jobs/${seg}/${seg}/out/checkpoints/(step-\\d+)`, 'g'), 'checkpoint $3')
    .replace(new RegExp(`${dd}/jobs/${seg}/${seg}(/out)?`, 'g'), 'accounts/$1/supervisedFineTuningJobs/$2')
    .replace(new RegExp(`${dd}/models/${seg}/${seg}`, 'g'), 'accounts/$1/models/$2')
    .replace(new RegExp(`${dd}/`, 'g'), '<data dir>/');
}

export interface Outcome {
  state: string;
  status: { code: string; message: string };
}

/**
 * The job's final state from the trainer's exit and its job.json, if this run (started at ISO time `since`) wrote
 * it: a run that fails before writing it leaves the previous run's final state there.
 */
export function outcome(jobDir: string, since: string, code: number | null, signal: NodeJS.Signals | null): Outcome {
  const job = readTrainerJob(jobDir);
  const mine = job && job.updateTime >= since && TERMINAL_STATES.includes(job.state);
  if (mine && (code === 0 || code === 1 || code === 130))
    return { state: job.state, status: { ...job.status, message: publicText(jobDir, job.status.message) } };
  const how = signal
    ? `was killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory, or killed by hand)' : ''}`
    : `exited with code ${code}`;
  const tail = publicText(jobDir, logTail(jobDir));
  return {
    state: 'JOB_STATE_FAILED',
    status: { code: 'INTERNAL', message: `the trainer process ${how}${tail ? `; last output: ${tail}` : ''}` },
  };
}
