// job.json: the managed job's REST response object (SupervisedFineTuningJob), kept up to date on disk.
// State machine: VALIDATING -> RUNNING -> COMPLETED | EARLY_STOPPED | FAILED | CANCELLED.
import * as path from 'node:path';
import { writeFileAtomic } from '../util/atomic.ts';
import { readJsonObject } from '../util/files.ts';
import type { TrainConfig } from './config.ts';
import { FIELDS } from './config_fields.ts';

export type JobState =
  | 'JOB_STATE_VALIDATING'
  | 'JOB_STATE_RUNNING'
  | 'JOB_STATE_COMPLETED'
  | 'JOB_STATE_FAILED'
  | 'JOB_STATE_CANCELLED'
  | 'JOB_STATE_EARLY_STOPPED';

export const TERMINAL_STATES: JobState[] = [
  'JOB_STATE_COMPLETED',
  'JOB_STATE_FAILED',
  'JOB_STATE_CANCELLED',
  'JOB_STATE_EARLY_STOPPED',
];

interface JobProgress {
  percent: number;
  epoch: number;
  /** Tokens the model read (all input tokens of the trained micro-batches, padding excluded). */
  inputTokens: number;
  /** Tokens trained on (weight != 0), the managed job's billable "trained tokens". */
  outputTokens: number;
  totalInputRequests: number;
  totalProcessedRequests: number;
  successfullyProcessedRequests: number;
  failedRequests: number;
  outputRows: number;
  cachedInputTokenCount: number;
}

export interface Job {
  name: string;
  state: JobState;
  status: { code: string; message: string };
  createTime: string;
  updateTime: string;
  completedTime?: string;
  createdBy: string;
  jobProgress: JobProgress;
  [requestField: string]: unknown;
}

/** google.rpc.Code names for the final status. */
const STATUS_CODE: Record<JobState, string> = {
  JOB_STATE_VALIDATING: 'OK',
  JOB_STATE_RUNNING: 'OK',
  JOB_STATE_COMPLETED: 'OK',
  JOB_STATE_EARLY_STOPPED: 'OK',
  JOB_STATE_FAILED: 'INTERNAL',
  JOB_STATE_CANCELLED: 'CANCELLED',
};

function jobName(jobId: string): string {
  return `accounts/local/supervisedFineTuningJobs/${jobId}`;
}

/** The command line that started a job (shellArgs of the argv after `lorasft`) and its working dir. */
export interface JobCommand {
  command: string;
  cwd: string;
}

/**
 * A new job in VALIDATING, echoing every request-body field of the config (local extras stay in resolved_config.json);
 * `local.command`: the command that started it, when known, so that a job stopped before it started can say it.
 */
export function createJob(cfg: TrainConfig, now = new Date(), started?: JobCommand): Job {
  const job: Job = {
    name: jobName(cfg.jobId),
    state: 'JOB_STATE_VALIDATING',
    status: { code: 'OK', message: 'validating dataset and model' },
    createTime: now.toISOString(),
    updateTime: now.toISOString(),
    createdBy: process.env.USER ?? 'local',
    jobProgress: {
      percent: 0,
      epoch: 0,
      inputTokens: 0,
      outputTokens: 0,
      totalInputRequests: 0,
      totalProcessedRequests: 0,
      successfullyProcessedRequests: 0,
      failedRequests: 0,
      outputRows: 0,
      cachedInputTokenCount: 0,
    },
  };
  for (const [key, f] of Object.entries(FIELDS))
    if (f.rest) job[key] = (cfg as unknown as Record<string, unknown>)[key];
  if (started) job.local = { ...started };
  return job;
}

/** google.rpc.Code names a failed job can report (INTERNAL unless the cause is known). */
export type FailureCode = 'INVALID_ARGUMENT' | 'FAILED_PRECONDITION' | 'INTERNAL';

/**
 * Move to `state` (terminal states set completedTime) and write job.json atomically. `code` overrides the state's
 * status code: a job that fails on the user's input is INVALID_ARGUMENT, as the managed service reports it.
 */
export function setJobState(
  job: Job,
  state: JobState,
  message: string,
  outDir: string,
  opts: { now?: Date; code?: FailureCode } = {},
): void {
  const now = opts.now ?? new Date();
  job.state = state;
  job.status = { code: opts.code ?? STATUS_CODE[state], message };
  job.updateTime = now.toISOString();
  if (TERMINAL_STATES.includes(state)) job.completedTime = now.toISOString();
  else delete job.completedTime;
  writeJob(job, outDir);
}

export function writeJob(job: Job, outDir: string): void {
  writeFileAtomic(path.join(outDir, 'job.json'), JSON.stringify(job, null, 2) + '\n');
}

/** The command recorded in job.json `local` (a job of an older lorasft, or one not started by the CLI, has none). */
export function jobCommand(job: Job): JobCommand | null {
  const l = job.local as Partial<JobCommand> | undefined;
  return typeof l?.command === 'string' && typeof l.cwd === 'string' ? { command: l.command, cwd: l.cwd } : null;
}

/** OUT_DIR/job.json (a missing, unreadable or corrupt file is a one-line UserError). */
export function readJob(outDir: string): Job {
  return readJsonObject(
    path.join(outDir, 'job.json'),
    'expected the job.json of a lorasft train output dir',
  ) as unknown as Job;
}
