// Loads the C++ addon built from kernels/ (build/Release/lorasft_native.node) once; null + reason if absent.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { shellQuote } from '../util/invocation.ts';

type F32 = Float32Array;
type I32 = Int32Array;

/** What kernels/MatMulBf16.cc reports about its bf16 path (oneDNN or the fp32 fallback). */
interface Bf16Info {
  dnnl: boolean;
  native: boolean;
  path: 'onednn' | 'fallback';
  /** The products on oneDNN: bf16 dot products, or W widened to fp32 per block (Intel CPUs without AMX). */
  products: 'bf16' | 'f32';
  error: string;
  version: string;
  isa: string;
  impl: string;
  /** Seconds spent in oneDNN products called outside parallel regions (linears, lm_head), since load. */
  productSeconds: number;
}

/**
 * Every function the addon exports (kernels/*.cc, each registered by its file's Init*). Arrays are row-major;
 * outputs are written in place; shapes are in the C++ comments and in src/kernel_names.ts.
 */
export interface NativeAddon {
  /** kernels/addon.cc: OpenBLAS state and the thread count; core: its kernel family in use (openblas_get_corename,
   * e.g. 'Haswell'; '' if not exported). */
  info(): { available: boolean; error: string; path: string; config: string; core: string; threads: number };
  setThreads(n: number): void;
  /** Idle-class spinners, one pinned per CPU (kernels/KeepAwake.cc): on/off, or no argument to ask; the count alive. */
  keepAwake(on?: boolean): number;
  /** kernels/BatchMatMul.cc: out [batch,M,N] = op(a) op(b) (+ bias, activation act with alpha; idx = broadcast). */
  batchMatMul(
    a: F32,
    b: F32,
    out: F32,
    batchA: number,
    batchB: number,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
    bias?: F32 | null,
    act?: number,
    alpha?: number,
    idxA?: I32 | null,
    idxB?: I32 | null,
  ): void;
  /** kernels/AdamW.cc: AdamW on every tensor i (ps[i], gs[i], ms[i], vs[i] of one length; keeps[i] = 1 - lr*wd or
   *  1), in place on p, m, v (optimizer state, not tensors), in one parallel region. */
  adamWMany(
    ps: F32[],
    gs: F32[],
    ms: F32[],
    vs: F32[],
    keeps: number[],
    beta1: number,
    beta2: number,
    eps: number,
    stepSize: number,
    sqrtBc2: number,
  ): void;
  /** kernels/GatherV2.cc: out [N,S] = x [R,S] rows idx [N]; -1, or the position of the first index outside [0,R). */
  gatherV2(x: F32, idx: I32, out: F32, R: number, S: number): number;
  /** kernels/GatherV2.cc: out [segs,S] += x [N,S] rows by ids [N] (ids outside [0,segs) dropped); out zeroed. */
  unsortedSegmentSum(x: F32, ids: I32, out: F32, segs: number, S: number): void;
  /** kernels/Elementwise.cc: out = a (op) b, numpy broadcasting through the strides (0 along broadcast dims). */
  add(a: F32, b: F32, out: F32, shape: I32, stridesA: I32, stridesB: I32): void;
  sub(a: F32, b: F32, out: F32, shape: I32, stridesA: I32, stridesB: I32): void;
  multiply(a: F32, b: F32, out: F32, shape: I32, stridesA: I32, stridesB: I32): void;
  realDiv(a: F32, b: F32, out: F32, shape: I32, stridesA: I32, stridesB: I32): void;
  softmax(logits: F32, out: F32, rows: number, cols: number): void;
  transpose(x: F32, out: F32, shape: I32, perm: I32): void;
  /** kernels/WeightedCrossEntropy.cc: loss [1] = sum w CE, dh [M,C] (null: loss only); rows of M at a time. */
  weightedCrossEntropy(
    h: F32,
    W: F32,
    labels: I32,
    w: F32,
    loss: F32,
    dh: F32 | null,
    M: number,
    C: number,
    V: number,
    chunkRows: number,
  ): void;
  fusedAttention(
    q: F32,
    k: F32,
    v: F32,
    seg: I32,
    out: F32,
    lse: F32,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
    window: number,
    bf16: boolean,
    cos?: F32, // RoPE tables [B*T, D]: q and k are rotated first (dq, dk: of the unrotated q, k)
    sin?: F32,
    qNorm?: F32, // q_norm, k_norm [D] (with cos/sin): q, k RMS-normalized per head first (as rmsNorm, vectorSums = bf16)
    kNorm?: F32,
    normEps?: number,
  ): void;
  fusedAttentionGrad(
    dy: F32,
    q: F32,
    k: F32,
    v: F32,
    seg: I32,
    out: F32,
    lse: F32,
    dq: F32,
    dk: F32,
    dv: F32,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
    window: number,
    bf16: boolean,
    cos?: F32, // RoPE tables [B*T, D]: q and k are rotated first (dq, dk: of the unrotated q, k)
    sin?: F32,
    qNorm?: F32, // q_norm, k_norm [D] (with cos/sin): q, k RMS-normalized per head first (as rmsNorm, vectorSums = bf16)
    kNorm?: F32,
    normEps?: number,
  ): void;
  geluTanhMul(gate: F32, up: F32, y: F32, n: number): void;
  geluTanhMulGrad(dy: F32, gate: F32, up: F32, dgate: F32, dup: F32, n: number): void;
  swiglu(gate: F32, up: F32, y: F32, n: number, fastExp: boolean): void;
  swigluGrad(dy: F32, gate: F32, up: F32, dgate: F32, dup: F32, n: number, fastExp: boolean): void;
  loraLinear(
    x: F32,
    xl: F32,
    W: F32,
    A: F32,
    B: F32,
    bias: F32 | null,
    y: F32,
    u: F32,
    N: number,
    inp: number,
    out: number,
    r: number,
    scale: number,
  ): void;
  loraLinearGrad(
    dy: F32,
    xl: F32,
    W: F32,
    A: F32,
    B: F32,
    u: F32,
    dx: F32,
    dxl: F32 | null,
    dA: F32,
    dB: F32,
    N: number,
    inp: number,
    out: number,
    r: number,
    scale: number,
  ): void;
  rmsNorm(x: F32, w: F32, y: F32, rstd: F32, N: number, C: number, eps: number, vectorSums?: boolean): void;
  rmsNormGrad(dy: F32, x: F32, w: F32, rstd: F32, dx: F32, dw: F32, N: number, C: number, vectorSums?: boolean): void;
  rope(x: F32, cos: F32, sin: F32, y: F32, N: number, h: number, D: number, transpose: boolean): void;
  /** kernels/MatMulBf16.cc: the bf16 variants take W packed two bf16 per int32 (src/ops/matmul_bf16.ts). */
  matMulBf16(x: F32, W: I32, y: F32, M: number, N: number, K: number, transposeW: boolean): void;
  loraLinearBf16(
    x: F32,
    xl: F32,
    W: I32,
    A: F32,
    B: F32,
    bias: F32 | null,
    y: F32,
    u: F32,
    N: number,
    inp: number,
    out: number,
    r: number,
    scale: number,
  ): void;
  loraLinearGradBf16(
    dy: F32,
    xl: F32,
    W: I32,
    A: F32,
    B: F32,
    u: F32,
    dx: F32,
    dxl: F32 | null,
    dA: F32,
    dB: F32,
    N: number,
    inp: number,
    out: number,
    r: number,
    scale: number,
  ): void;
  /** loraLinearBf16 for linears that read the same x (U [N, n r]: the u_i side by side). */
  loraLinearGroupBf16(
    x: F32,
    members: Array<{ out: number; W: I32; A: F32; B: F32; bias: F32 | null; y: F32 }>,
    U: F32,
    N: number,
    inp: number,
    r: number,
    scale: number,
  ): void;
  /** Its backward: dx = the sum over the members; dA, dB per member. */
  loraLinearGroupGradBf16(
    x: F32,
    members: Array<{ out: number; W: I32; A: F32; B: F32; dy: F32; dA: F32; dB: F32 }>,
    U: F32,
    dx: F32,
    N: number,
    inp: number,
    r: number,
    scale: number,
  ): void;
  weightedCrossEntropyBf16(
    h: F32,
    W: I32,
    labels: I32,
    w: F32,
    loss: F32,
    dh: F32 | null,
    M: number,
    C: number,
    V: number,
    chunkRows: number,
  ): void;
  bf16Info(): Bf16Info;
  /** Tests and benchmarks: force the oneDNN path or the fp32 fallback. */
  setBf16Path(path: 'onednn' | 'onednn-bf16' | 'onednn-f32' | 'fallback'): void;
  /** Tests: the lm_head softmax's vector path (same bits) or its scalar loop; true if the vector path can run. */
  setSoftmaxPath(path: 'vector' | 'scalar'): boolean;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CANDIDATES = ['build/Release/lorasft_native.node', 'build/Debug/lorasft_native.node'];
/**
 * The command that builds the addon, from any directory: package.json's install script (kernels/install.mjs) run by
 * npm, which hands it npm's own node-gyp (run alone, it needs node-gyp on PATH).
 */
const BUILD_COMMAND = `cd ${shellQuote(ROOT)} && npm run install`;

let loaded: { addon: NativeAddon | null; error: string } | undefined;

function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return ''; // not Linux: OpenBLAS picks its kernels itself
  }
}

/**
 * The OpenBLAS kernel family for this CPU's instruction sets (OPENBLAS_CORETYPE), from /proc/cpuinfo's first
 * vendor_id and flags. OpenBLAS picks by CPU model number, and a model newer than the library is run on its
 * generic SSE3 'Prescott' kernels: Debian's 0.3.21 on a Xeon of model 207 did 55-62 GFLOP/s of sgemm instead of
 * 272-274 with 'SkylakeX' (docs/BENCHMARKS.md, runs p). AVX-512 CPUs get 'SkylakeX', the family 0.3.21 ran on the
 * AMX Xeon of the earlier runs (the fp32 demo's bits match it; 'Cooperlake' sums in another order).
 */
export function openblasCoreType(cpuinfo: string): string | undefined {
  const flags = new Set(/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].trim().split(/\s+/) ?? []);
  const vendor = /^vendor_id\s*:\s*(\S+)/m.exec(cpuinfo)?.[1];
  const has = (...f: string[]) => f.every((x) => flags.has(x));
  if (vendor !== 'GenuineIntel' || !has('avx2', 'fma')) return undefined; // AMD: OpenBLAS goes by family, not model
  return has('avx512f', 'avx512bw', 'avx512dq', 'avx512vl') ? 'SkylakeX' : 'Haswell';
}

/** The addon whether or not OpenBLAS loaded (check info().available), or null with the reason it could not load. */
export function loadAddon(): { addon: NativeAddon | null; error: string } {
  if (loaded) return loaded;
  // LORASFT_ADDON=/path/x.node picks another build (tests use a missing path to check the fallback).
  const forced = process.env.LORASFT_ADDON;
  const file = forced || CANDIDATES.map((c) => path.join(ROOT, c)).find((f) => existsSync(f));
  if (!file || !existsSync(file)) {
    loaded = {
      addon: null,
      error: `native addon not built (no build/Release/lorasft_native.node; build it with: ${BUILD_COMMAND})`,
    };
    return loaded;
  }
  // Idle worker threads must sleep, not spin: OpenBLAS spins ~2^28 cycles after each sgemm by default and
  // OpenMP (our own loops) spins too, so on a few cores each steals the other's core (measured: attention
  // fwd+bwd 120-430 ms -> 31 ms per layer). Both are read when the libraries load, hence set before. bf16 steps
  // too: OpenMP workers spinning 300000 pauses (GOMP_SPINCOUNT) saved 0.15-0.3 s of a 0.6B step on an idle machine,
  // but with one core busy elsewhere the step took 12.1 s instead of 4.0 s (10000 pauses: 5.0 s, no clear gain idle).
  process.env.OPENBLAS_THREAD_TIMEOUT ??= '4';
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  const core = openblasCoreType(readCpuinfo());
  if (core) process.env.OPENBLAS_CORETYPE ??= core;
  try {
    loaded = { addon: createRequire(import.meta.url)(file) as NativeAddon, error: '' };
  } catch (e) {
    loaded = { addon: null, error: `native addon failed to load: ${(e as Error).message.split('\n')[0]}` };
  }
  return loaded;
}

let usable: NativeAddon | undefined; // the addon, once it loaded with OpenBLAS (neither changes after)

/** The addon if it loaded AND OpenBLAS is available; kernels registered for 'native' use this. */
export function nativeAddon(): NativeAddon {
  if (usable) return usable; // every native kernel call asks; info() builds an object each time (~10 us)
  const { addon } = loadAddon();
  if (!addon || !addon.info().available) throw new Error('lorasft native addon with OpenBLAS is not available');
  return (usable = addon);
}
