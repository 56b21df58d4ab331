// The compute threads of a backend: `--threads N`, else LORASFT_THREADS, else every CPU; never more than MAX_THREADS.
import os from 'node:os';
import { UserError } from '../errors.ts';

/**
 * The most compute threads: more than any CPU count lorasft meets, far fewer than what breaks. Past the CPUs more
 * threads only slow the kernels (OpenBLAS caps itself at its build's MAX_THREADS, 64 in Debian's). Our OpenMP loops
 * do not: libgomp starts a team of N threads, and on a 2-core VM 32768 failed ('libgomp: Thread creation failed',
 * exit 1) and 65536 overflowed the calling thread's stack in GOMP_parallel (segfault, the job left RUNNING).
 */
export const MAX_THREADS = 1024;

/** The threads to use; a count that is not a positive integer up to MAX_THREADS is a UserError naming its source. */
export function resolveThreads(threads?: number): number {
  const env = Number(process.env.LORASFT_THREADS);
  const fromEnv = threads === undefined && Number.isInteger(env) && env > 0;
  const n = threads ?? (fromEnv ? env : Math.min(os.availableParallelism(), MAX_THREADS));
  const source = fromEnv ? 'LORASFT_THREADS' : '--threads';
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${source}: expected a positive integer, got ${n}`);
  if (n > MAX_THREADS)
    throw new UserError(`${source}: at most ${MAX_THREADS} threads (more only slow the kernels), got ${n}`);
  return n;
}
