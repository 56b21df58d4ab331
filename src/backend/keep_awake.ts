// While a training loop runs, keep the CPUs lorasft computes on from going idle between kernels: one idle-priority
// thread pinned to each CPU (kernels/KeepAwake.cc). The OpenMP workers wait passively (src/backend/addon.ts), so
// other processes keep their cores; on a shared VM host the bf16 products ran at about half speed while the vCPUs
// kept going idle (docs/BENCHMARKS.md, runs p). An idle-class thread yields at once to any other work.
import os from 'node:os';
import { loadAddon } from './addon.ts';
import type { BackendChoice } from './index.ts';

/**
 * Starts the spinners for a job on `backend`; returns the function that stops them. On when the native backend
 * computes on every CPU (fewer threads leave CPUs that no spinner should hold); LORASFT_KEEP_AWAKE=0 turns them
 * off, =1 on whatever the thread count.
 */
export function keepCpusAwake(backend: Pick<BackendChoice, 'name' | 'threads'>): () => void {
  const env = process.env.LORASFT_KEEP_AWAKE;
  const all = backend.threads !== null && backend.threads >= os.availableParallelism();
  const addon = loadAddon().addon;
  if (backend.name !== 'native' || !addon || env === '0' || (env !== '1' && !all)) return () => {};
  addon.keepAwake(true);
  return () => addon.keepAwake(false);
}
