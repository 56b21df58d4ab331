// Child processes for the CLI tests, always asynchronous: a long spawnSync blocks the vitest worker's event
// loop, and under load its RPC to the main process times out ('Timeout calling "onTaskUpdate"') and fails a
// green run. `run` resolves when the child exits, with its output, exit status and signal.
import { spawn, type ChildProcess } from 'node:child_process';

export { BIN } from './index.ts';
import { BIN } from './index.ts';

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  /** Accepted for spawnSync-style call sites; output is always utf8 and unbounded. */
  encoding?: 'utf8';
  maxBuffer?: number;
  /** Called with the child once it is spawned (to signal it, or to watch it). */
  onStart?: (child: ChildProcess) => void;
}

/** Run `cmd args` to completion without blocking the event loop. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    opts.onStart?.(child);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
    // A child that exits without reading its stdin closes the pipe: EPIPE here is not the test's error.
    child.stdin.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e);
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** `lorasft ARGS` through bin/lorasft.js with this node. */
export function lorasft(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [BIN, ...args], opts);
}
