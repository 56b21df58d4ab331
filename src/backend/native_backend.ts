// Backend 'native': MathBackendCPU (same tensor storage: Float32Array per dataId) running the cpu kernels, the hot
// ones replaced by C++ (its kernels are registered by registerAllKernels in src/register_all_kernels.ts).
import * as tf from '@tensorflow/tfjs-core';
import type { backend_util, DataId, DataType } from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu'; // importing it also registers the 'cpu' kernels
import { loadAddon } from './addon.ts';
import { BufferPool } from './buffer_pool.ts';

type Values = backend_util.BackendValues;

/** MathBackendCPU plus a pool for large kernel outputs (src/backend/buffer_pool.ts); LORASFT_BUFFER_POOL=0 disables it. */
export class NativeBackend extends MathBackendCPU {
  readonly pool = new BufferPool();
  private refs = new Map<ArrayBufferLike, number>(); // pooled buffer -> dataIds holding it (or a view of it)

  constructor() {
    super();
    quiet(this);
    this.pool.enabled = process.env.LORASFT_BUFFER_POOL !== '0';
  }

  private ref(values: Values): void {
    const buf = (values as Float32Array).buffer;
    if (buf && this.pool.owns(buf)) this.refs.set(buf, (this.refs.get(buf) ?? 0) + 1);
  }

  override write(values: Values, shape: number[], dtype: DataType): DataId {
    const id = super.write(values, shape, dtype);
    this.ref(values);
    return id;
  }

  override move(dataId: DataId, values: Values, shape: number[], dtype: DataType, refCount: number): void {
    super.move(dataId, values, shape, dtype, refCount);
    this.ref(values);
  }

  /** Values handed out (dataSync, data, arraySync) may be kept by the caller: their buffer is never recycled. */
  override readSync(dataId: DataId): Values {
    const buf = (this.data.get(dataId)?.values as Float32Array | undefined)?.buffer;
    if (buf) this.pool.disown(buf);
    return super.readSync(dataId);
  }

  /** readSync without disowning: for a caller that drops the values before the tensor is disposed (useValues). */
  borrowSync(dataId: DataId): Values {
    return super.readSync(dataId);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const done = super.disposeData(dataId, force);
    const buf = (values as Float32Array | undefined)?.buffer;
    if (buf && !this.data.has(dataId) && this.refs.has(buf)) {
      const n = this.refs.get(buf)! - 1;
      if (n > 0) this.refs.set(buf, n);
      else {
        this.refs.delete(buf);
        this.pool.release(buf);
      }
    }
    return done;
  }
}

/**
 * use(t's values), then t disposed: `use` must keep no reference to the values. On 'native' the buffer is not
 * handed out for good (as dataSync does), so a pooled one is recycled: the gradients read each step would
 * otherwise be ~20 MB of fresh memory a step at Qwen3-0.6B. Other backends: dataSync.
 */
export function useValues<R>(t: tf.Tensor, use: (values: Float32Array) => R): R {
  const b = tf.backend();
  const own = b instanceof NativeBackend && t.dtype === 'float32' && b.data.has(t.dataId);
  try {
    return use((own ? b.borrowSync(t.dataId) : t.dataSync()) as Float32Array);
  } finally {
    t.dispose();
  }
}

/** Silences MathBackendCPU's one-time "install tfjs-node" banner (we chose this backend on purpose). */
export function quiet(b: unknown): void {
  (b as { firstUse: boolean }).firstUse = false;
}

let registered = false;

/**
 * Registers the backend 'native' (idempotent; its kernels: registerAllKernels) and sets the addon's threads.
 * Needs the addon with OpenBLAS: call nativeAvailability() first.
 */
export function registerNativeBackend(threads: number): void {
  loadAddon().addon!.setThreads(threads);
  if (registered) return;
  registered = true;
  tf.registerBackend('native', () => new NativeBackend(), 1);
}

/** Whether 'native' can run here: the addon loaded and found OpenBLAS; else why not (one line). */
export function nativeAvailability(): { ok: boolean; detail: string; threads: number } {
  const { addon, error } = loadAddon();
  if (!addon) return { ok: false, detail: error, threads: 0 };
  const info = addon.info();
  if (!info.available) return { ok: false, detail: info.error, threads: 0 };
  const lib = info.config.split(' ').slice(0, 2).join(' ');
  return { ok: true, detail: info.core ? `${lib} ${info.core}` : lib, threads: info.threads };
}
