// metrics.jsonl: one JSON object per line. A train row per optimizer step, an eval row per evaluation.
// Each row is appended with one write (whole lines); on resume the rows after the checkpoint step are
// dropped (atomic rewrite) so the file reads as one uninterrupted run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { appendFile, writeFileAtomic } from '../util/atomic.ts';

export interface TrainRow {
  step: number;
  epoch: number;
  train_loss: number;
  lr: number;
  grad_norm: number;
  tokens_per_s: number;
  /** Trained (weighted) tokens in this step. */
  tokens: number;
  time: string;
}

export interface EvalRow {
  step: number;
  epoch: number;
  eval_loss: number;
  time: string;
}

/** The backend that computed a run (resolved_config.json `backendUsed`, job.json `local.backend`, the first row). */
export interface BackendUsed {
  name: string;
  library: string;
  threads: number | null;
  reason: string;
  /** What the config asked for ('auto' when nothing). */
  requested: string;
}

/** The first row a process appends also says which backend computed it. */
export type MetricsRow = (TrainRow | EvalRow) & { backend?: BackendUsed };

/**
 * At resume: a line when the backend, its library or its thread count differs from the job's last run (recorded in
 * resolved_config.json), or null. Each changes the floating-point reduction order, so the adapter is then not
 * byte-identical to an uninterrupted run.
 */
export function backendChange(outDir: string, now: BackendUsed): string | null {
  let was: BackendUsed | undefined;
  try {
    was = JSON.parse(fs.readFileSync(path.join(outDir, 'resolved_config.json'), 'utf8')).backendUsed;
  } catch {
    return null; // stopped before it was recorded
  }
  const say = (b: BackendUsed) =>
    `${b.name} (${b.library}, ${b.threads === null ? 'default threads' : `${b.threads} thread${b.threads === 1 ? '' : 's'}`})`;
  if (!was || say(was) === say(now)) return null;
  return `the job's last run computed on ${say(was)}, this resume on ${say(now)}: the adapter will not be byte-identical to an uninterrupted run (resume with the same --backend and --threads for that)`;
}

export function metricsFile(outDir: string): string {
  return path.join(outDir, 'metrics.jsonl');
}

export function appendMetrics(outDir: string, row: MetricsRow): void {
  appendFile(metricsFile(outDir), JSON.stringify(row) + '\n');
}

/** All complete rows (a torn last line from a killed process is skipped). */
export function readMetrics(outDir: string): MetricsRow[] {
  const file = metricsFile(outDir);
  if (!fs.existsSync(file)) return [];
  const rows: MetricsRow[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line) as MetricsRow);
    } catch {
      // A line cut off by SIGKILL: the step it describes is redone after resume.
    }
  }
  return rows;
}

/** Keep only rows with step <= lastStep (used when resuming from the checkpoint at lastStep). */
export function truncateMetrics(outDir: string, lastStep: number): void {
  const rows = readMetrics(outDir).filter((r) => r.step <= lastStep);
  writeFileAtomic(metricsFile(outDir), rows.map((r) => JSON.stringify(r) + '\n').join(''));
}
