// Backend choice: 'tensorflow' (tfjs-node(-gpu), only if the user installed it) > 'native' (C++ addon + OpenBLAS)
// > 'cpu' (pure JS). `--backend NAME` forces one; a forced or default 'native' that cannot run falls back to 'cpu'
// with a one-line warning, never a crash. Threads: resolveThreads (threads.ts).
import * as tf from '@tensorflow/tfjs-core';
import { version_cpu as tfjsCpuVersion } from '@tensorflow/tfjs-backend-cpu';
import { UserError } from '../errors.ts';
import { registerAllKernels } from '../register_all_kernels.ts';
import { nativeAvailability, quiet, registerNativeBackend } from './native_backend.ts';
import { resolveThreads } from './threads.ts';

export interface BackendChoice {
  name: string;
  /** Why this backend, for the start-up line: `backend: ${name} (${reason})`. */
  reason: string;
  /** Set when the wanted backend could not be used (also printed to stderr). */
  warning?: string;
  /** What computes: the library and its version (OpenBLAS 0.3.21, @tensorflow/tfjs-node, tfjs-backend-cpu 4.22.0). */
  library: string;
  /** Threads of the kernels (1 for the pure-JS cpu backend; null when the library decides). */
  threads: number | null;
}

const BACKENDS = ['tensorflow', 'native', 'cpu'] as const;

/** Imports tfjs-node-gpu or tfjs-node if installed (never a dependency); returns the package name or null. */
async function tryTensorflow(): Promise<string | null> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (tf.findBackend('tensorflow')) return pkg;
    } catch {
      // not installed or failed to load its native library: try the next one
    }
  }
  return null;
}

export async function initBackend(opts: { backend?: string; threads?: number } = {}): Promise<BackendChoice> {
  const want = opts.backend;
  if (want !== undefined && !(BACKENDS as readonly string[]).includes(want)) {
    throw new UserError(`--backend: unknown backend '${want}', expected one of ${BACKENDS.join(', ')}`);
  }
  const threads = resolveThreads(opts.threads);
  await registerAllKernels({ native: false });
  let choice: BackendChoice | undefined;
  let warning: string | undefined;
  if (want === undefined || want === 'tensorflow') {
    const pkg = await tryTensorflow();
    if (pkg) choice = { name: 'tensorflow', reason: `${pkg} is installed`, library: pkg, threads: null };
    else if (want === 'tensorflow')
      warning = "backend 'tensorflow' needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu installed";
  }
  if (!choice && want !== 'cpu') {
    const nat = nativeAvailability();
    if (nat.ok) {
      registerNativeBackend(threads);
      await registerAllKernels({ native: true });
      choice = {
        name: 'native',
        reason: `${nat.detail}, ${threads} thread${threads > 1 ? 's' : ''}`,
        library: `${nat.detail} via the lorasft_native addon`,
        threads,
      };
    } else {
      warning = warning ? `${warning}; native: ${nat.detail}` : `native backend unavailable: ${nat.detail}`;
    }
  }
  if (!choice) {
    const cpu = { name: 'cpu', library: `@tensorflow/tfjs-backend-cpu ${tfjsCpuVersion}`, threads: 1 };
    choice =
      want === 'cpu' ? { ...cpu, reason: '--backend cpu' } : { ...cpu, reason: 'fallback, slow pure-JS kernels' };
  }
  if (warning) {
    choice.warning = `${warning}; using '${choice.name}'${choice.name === 'cpu' ? ' (slow)' : ''}`;
    process.stderr.write(`warning: ${choice.warning}\n`);
  }
  if (!(await tf.setBackend(choice.name))) throw new Error(`tfjs could not initialise backend '${choice.name}'`);
  await tf.ready();
  quiet(tf.findBackend('cpu'));
  return choice;
}
