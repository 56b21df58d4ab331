// Backend 'native': MathBackendCPU (same tensor storage: Float32Array per dataId) with every cpu kernel
// re-registered under 'native', then the hot kernels from src/register_all_kernels.ts replaced by C++ ones.
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu'; // importing it also registers the 'cpu' kernels
import { loadAddon } from './addon.ts';
import { NATIVE_KERNELS } from '../register_all_kernels.ts';
import { registerOpKernels } from './registry.ts';

export class NativeBackend extends MathBackendCPU {
  constructor() {
    super();
    quiet(this);
  }
}

/** Silences MathBackendCPU's one-time "install tfjs-node" banner (we chose this backend on purpose). */
export function quiet(b: unknown): void {
  (b as { firstUse: boolean }).firstUse = false;
}

let registered = false;

/** Registers 'native' (idempotent). Needs the addon with OpenBLAS: call nativeAvailability() first. */
export function registerNativeBackend(threads: number): void {
  loadAddon().addon!.setThreads(threads);
  if (registered) return;
  registered = true;
  registerOpKernels();
  tf.registerBackend('native', () => new NativeBackend(), 1);
  for (const k of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...k, backendName: 'native' });
  for (const k of NATIVE_KERNELS) {
    if (tf.getKernel(k.kernelName, 'native')) tf.unregisterKernel(k.kernelName, 'native');
    tf.registerKernel(k);
  }
}

/** Whether 'native' can run here: the addon loaded and found OpenBLAS; else why not (one line). */
export function nativeAvailability(): { ok: boolean; detail: string; threads: number } {
  const { addon, error } = loadAddon();
  if (!addon) return { ok: false, detail: error, threads: 0 };
  const info = addon.info();
  if (!info.available) return { ok: false, detail: info.error, threads: 0 };
  return { ok: true, detail: info.config.split(' ').slice(0, 2).join(' '), threads: info.threads };
}
