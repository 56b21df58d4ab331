// The job queue: first in first out (the store's seq order), at most `workers` trainers at a time, each in its own
// child process (worker.ts). While a job runs, its progress is copied from the trainer's job.json into the store
// twice a second, so GET answers from the store and never waits on a trainer.
import type { ChildProcess } from 'node:child_process';
import { registerOutputModel } from './models.ts';
import type { Service } from './service.ts';
import type { Json } from './store.ts';
import { noteExit, outcome, publicText, readTrainerJob, startTrainer } from './worker.ts';

interface Running {
  child: ChildProcess;
  dir: string;
  exited: Promise<void>;
  /** Set by cancel(): the exit ends the job CANCELLED whatever the trainer managed to write. */
  cancelled: boolean;
  lastSync: string;
  /** ISO time the trainer was started (job.json writes before it are a previous run's). */
  startedAt: string;
}

/** Fields of the trainer's job.json the API object takes (the rest are the server's: names, echoed request). */
const PROGRESS_FIELDS = ['state', 'status', 'jobProgress', 'updateTime', 'completedTime'] as const;

export class JobQueue {
  private running = new Map<string, Running>();
  private closing = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private svc: Service) {}

  /** Starts syncing progress and runs what is queued. */
  start(): void {
    this.timer = setInterval(() => this.syncAll(), 500);
    this.timer.unref();
    this.kick();
  }

  get size(): number {
    return this.running.size;
  }

  /** Starts queued jobs, oldest first, while fewer than `workers` run. */
  kick(): void {
    while (!this.closing && this.running.size < this.svc.opts.workers) {
      const r = this.svc.store.claim('job', 'JOB_STATE_PENDING', 'JOB_STATE_VALIDATING');
      if (!r) return;
      this.launch(r.name, r.body, r.meta);
    }
  }

  private launch(name: string, body: Json, meta: Json): void {
    const dir = meta.dir as string;
    let child: ChildProcess;
    try {
      child = startTrainer(dir);
    } catch (e) {
      const now = new Date().toISOString();
      const status = { code: 'INTERNAL', message: `cannot start the trainer: ${(e as Error).message}` };
      this.svc.store.update('job', name, {
        state: 'JOB_STATE_FAILED',
        body: { ...body, state: 'JOB_STATE_FAILED', status, updateTime: now, completedTime: now },
      });
      return;
    }
    const startedAt = new Date().toISOString();
    const status = {
      code: 'OK',
      message: (meta.runs as number) > 0 ? 'resuming from the last checkpoint' : 'validating dataset and model',
    };
    this.svc.store.update('job', name, {
      body: { ...body, state: 'JOB_STATE_VALIDATING', status, updateTime: startedAt },
      meta: { ...meta, pid: child.pid, runs: (meta.runs as number) + 1 },
    });
    let done!: () => void;
    const exited = new Promise<void>((res) => (done = res));
    const run: Running = { child, dir, exited, cancelled: false, lastSync: '', startedAt };
    this.running.set(name, run);
    child.on('error', (e) => this.finish(name, run, null, null, e.message).finally(done));
    child.on('exit', (code, signal) => void this.finish(name, run, code, signal).finally(done));
  }

  /** Copies the trainer's progress into the store (not its state while a cancel is on its way). */
  private sync(name: string, run: Running): void {
    const tj = readTrainerJob(run.dir);
    // Only what this run wrote (not a job.json left by the previous run), and only while it trains: a trainer
    // writes its final state just before it exits, and finish() records that; a cancel in flight keeps CANCELLING.
    if (!tj || tj.updateTime === run.lastSync || tj.updateTime < run.startedAt || run.cancelled) return;
    if (!['JOB_STATE_VALIDATING', 'JOB_STATE_RUNNING'].includes(tj.state)) return;
    run.lastSync = tj.updateTime;
    const r = this.svc.store.get('job', name);
    if (!r) return;
    const body = { ...r.body };
    for (const k of PROGRESS_FIELDS) if (tj[k] !== undefined) body[k] = tj[k];
    body.status = { ...tj.status, message: publicText(run.dir, tj.status.message) };
    delete body.completedTime;
    this.svc.store.update('job', name, { state: body.state as string, body });
  }

  private syncAll(): void {
    for (const [name, run] of this.running) this.sync(name, run);
  }

  private async finish(
    name: string,
    run: Running,
    code: number | null,
    signal: NodeJS.Signals | null,
    spawnError?: string,
  ): Promise<void> {
    if (this.running.get(name) !== run) return;
    this.running.delete(name);
    noteExit(run.dir, code, signal);
    const r = this.svc.store.get('job', name);
    if (r) {
      const body: Json = { ...r.body };
      const tj = readTrainerJob(run.dir);
      if (tj) for (const k of ['jobProgress'] as const) body[k] = tj[k];
      let state: string;
      let status: { code: string; message: string };
      if (this.closing && !run.cancelled) {
        state = 'JOB_STATE_PENDING';
        status = {
          code: 'OK',
          message: 'the server stopped; the job resumes from its last checkpoint when it starts again',
        };
      } else if (spawnError) {
        ({ state, status } = {
          state: 'JOB_STATE_FAILED',
          status: { code: 'INTERNAL', message: `cannot start the trainer: ${spawnError}` },
        });
      } else {
        ({ state, status } = outcome(run.dir, run.startedAt, code, signal));
        // A cancel that reached the trainer after it finished: the job is done, its model registered below.
        const finished = state === 'JOB_STATE_COMPLETED' || state === 'JOB_STATE_EARLY_STOPPED';
        if (run.cancelled && !finished)
          ({ state, status } = {
            state: 'JOB_STATE_CANCELLED',
            status: { code: 'CANCELLED', message: state === 'JOB_STATE_CANCELLED' ? status.message : 'cancelled' },
          });
      }
      if (state === 'JOB_STATE_COMPLETED' || state === 'JOB_STATE_EARLY_STOPPED') {
        const err = registerOutputModel(this.svc, r);
        if (err)
          ({ state, status } = { state: 'JOB_STATE_FAILED', status: { code: 'FAILED_PRECONDITION', message: err } });
      }
      const now = new Date().toISOString();
      Object.assign(body, { state, status, updateTime: now });
      if (state === 'JOB_STATE_PENDING') delete body.completedTime;
      else body.completedTime = tj?.completedTime && state === tj.state ? tj.completedTime : now;
      this.svc.store.update('job', name, { state, body, meta: { ...r.meta, pid: null } });
    }
    this.kick();
  }

  /** Cancels a queued job at once, a running one by SIGTERM (its trainer checkpoints, then exits). */
  cancel(name: string): void {
    const r = this.svc.store.get('job', name);
    if (!r) return;
    const run = this.running.get(name);
    const now = new Date().toISOString();
    if (!run) {
      if (r.state !== 'JOB_STATE_PENDING') return;
      const body = {
        ...r.body,
        state: 'JOB_STATE_CANCELLED',
        status: { code: 'CANCELLED', message: 'cancelled before it started' },
        updateTime: now,
        completedTime: now,
      };
      this.svc.store.update('job', name, { state: 'JOB_STATE_CANCELLED', body });
      return;
    }
    if (run.cancelled) return;
    run.cancelled = true;
    run.child.kill('SIGTERM');
    this.svc.store.update('job', name, {
      state: 'JOB_STATE_CANCELLING',
      body: {
        ...r.body,
        state: 'JOB_STATE_CANCELLING',
        status: { code: 'OK', message: 'stopping after the current step' },
        updateTime: now,
      },
    });
  }

  /** Cancels `name` if it runs and resolves once its trainer has exited. */
  async stop(name: string): Promise<void> {
    this.cancel(name);
    await this.running.get(name)?.exited;
  }

  /** Server shutdown: running trainers checkpoint and stop (SIGKILL after `graceMs`); their jobs stay queued. */
  async close(graceMs = 60_000): Promise<void> {
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    const runs = [...this.running.values()];
    for (const r of runs) r.child.kill('SIGTERM');
    const kill = setTimeout(() => runs.forEach((r) => r.child.kill('SIGKILL')), graceMs);
    await Promise.all(runs.map((r) => r.exited));
    clearTimeout(kill);
  }
}
