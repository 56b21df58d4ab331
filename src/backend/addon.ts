// Loads the C++ addon built from kernels/ (build/Release/lorasft_native.node) once; null + reason if absent.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The functions kernels/*.cc export (see each file's Init). Shapes are in the C++ comments. */
export interface NativeAddon {
  info(): { available: boolean; error: string; path: string; config: string; threads: number };
  setThreads(n: number): void;
  batchMatMul(a: Float32Array, b: Float32Array, out: Float32Array, batchA: number, batchB: number, M: number,
    N: number, K: number, transA: boolean, transB: boolean, bias?: Float32Array | null, act?: number, alpha?: number,
    idxA?: Int32Array | null, idxB?: Int32Array | null): void;
  /** kernels/AdamW.cc: one AdamW update of n elements, in place on p, m, v (optimizer state, not tensors). */
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, beta1: number, beta2: number,
    eps: number, keep: number, stepSize: number, sqrtBc2: number): void;
  /** kernels/Gather.cc: out [N,S] = x [R,S] rows idx [N]; -1, or the position of the first index outside [0,R). */
  gatherRows(x: Float32Array, idx: Int32Array, out: Float32Array, R: number, S: number): number;
  [fn: string]: unknown;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CANDIDATES = ['build/Release/lorasft_native.node', 'build/Debug/lorasft_native.node'];

let loaded: { addon: NativeAddon | null; error: string } | undefined;

/** The addon whether or not OpenBLAS loaded (check info().available), or null with the reason it could not load. */
export function loadAddon(): { addon: NativeAddon | null; error: string } {
  if (loaded) return loaded;
  // LORASFT_ADDON=/path/x.node picks another build (tests use a missing path to check the fallback).
  const forced = process.env.LORASFT_ADDON;
  const file = forced || CANDIDATES.map((c) => path.join(ROOT, c)).find((f) => existsSync(f));
  if (!file || !existsSync(file)) {
    loaded = { addon: null, error: 'native addon not built (no build/Release/lorasft_native.node; run `npm rebuild` or `node kernels/install.mjs`)' };
    return loaded;
  }
  // Idle worker threads must sleep, not spin: OpenBLAS spins ~2^28 cycles after each sgemm by default and
  // OpenMP (our own loops) spins too, so on a few cores each steals the other's core (measured: attention
  // fwd+bwd 120-430 ms -> 31 ms per layer). Both are read when the libraries load, hence set before.
  process.env.OPENBLAS_THREAD_TIMEOUT ??= '4';
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  try {
    loaded = { addon: createRequire(import.meta.url)(file) as NativeAddon, error: '' };
  } catch (e) {
    loaded = { addon: null, error: `native addon failed to load: ${(e as Error).message.split('\n')[0]}` };
  }
  return loaded;
}

/** The addon if it loaded AND OpenBLAS is available; kernels registered for 'native' use this. */
export function nativeAddon(): NativeAddon {
  const { addon } = loadAddon();
  if (!addon || !addon.info().available) throw new Error('lorasft native addon with OpenBLAS is not available');
  return addon;
}
