// Precision of the frozen base weights: 'fp32' (every weight float32, as before) or 'bf16' (linear, embedding
// and lm_head weights kept 16-bit as packed bf16, matmuls in bf16 with fp32 accumulation; norms, biases, LoRA,
// optimizer state, softmax and the loss stay fp32). 'auto' picks bf16 for bf16 checkpoints on CPUs with native
// bf16 (AVX512_BF16 through oneDNN), else fp32.
import * as tf from '@tensorflow/tfjs-core';
import { loadAddon } from '../backend/addon.ts';
import { UserError } from '../errors.ts';
import * as ops from '../ops/index.ts';
import { listModelTensors } from './safetensors.ts';

export type Precision = 'fp32' | 'bf16';

export interface Bf16Support {
  /** The bf16 kernels (MatMulBf16 et al.) are registered on the active backend. */
  kernels: boolean;
  /** oneDNN runs the bf16 matmuls on AVX512_BF16/AMX (else bf16 -> fp32 per layer + sgemm). */
  native: boolean;
  /** For the start-up line, e.g. 'oneDNN 2.6.3 (libdnnl.so.2), brg:avx512_core_amx_bf16', or the widened products. */
  detail: string;
}

export function bf16Support(): Bf16Support {
  const kernels = tf.getKernel('MatMulBf16', tf.getBackend()) !== undefined;
  const { addon } = loadAddon();
  const info = tf.getBackend() === 'native' && addon ? addon.bf16Info() : null;
  if (!info)
    return {
      kernels,
      native: false,
      detail: `bf16 -> fp32 per call on the '${tf.getBackend()}' backend (slow reference kernels)`,
    };
  if (info.path === 'onednn' && info.products === 'f32')
    return {
      kernels,
      native: true,
      detail: `${info.version}, run as f32 products of W widened per block (faster here than ${info.isa}'s bf16 dot products; no AMX)`,
    };
  if (info.path === 'onednn') return { kernels, native: true, detail: `${info.version}, ${info.impl}` };
  return {
    kernels,
    native: false,
    detail: `bf16 -> fp32 per layer + OpenBLAS sgemm (${info.error || 'fallback selected'})`,
  };
}

/** The precision a run uses: `requested` unless 'auto'; auto = bf16 for a bf16 checkpoint when the CPU has native bf16. */
function resolvePrecision(requested: string, checkpointDtype: string, support: Bf16Support): Precision {
  if (requested === 'bf16' && !support.kernels)
    throw new UserError(
      `precision bf16: the '${tf.getBackend()}' backend has no bf16 kernels; use --backend native or cpu, or --precision fp32`,
    );
  if (requested === 'fp32' || requested === 'bf16') return requested;
  return checkpointDtype === 'BF16' && support.native && support.kernels ? 'bf16' : 'fp32';
}

/** A command's --precision value, checked before anything loads: auto, fp32 or bf16. */
export function precisionFlag(p: string): string {
  if (!['auto', 'fp32', 'bf16'].includes(p))
    throw new UserError(`--precision: must be one of auto, fp32, bf16, got '${p}'`);
  return p;
}

/**
 * The precision model dir `dir` loads in on the active backend: `requested` (auto, fp32 or bf16) resolved against
 * the checkpoint's dtype. Training, loss-grad, generate and deployments all resolve it here, so an adapter is
 * served as it was trained.
 */
export function modelPrecision(dir: string, requested = 'auto'): Precision {
  return resolvePrecision(requested, checkpointDtype(dir), bf16Support());
}

/** The dtype of a model dir's embedding (the checkpoint's weight dtype: BF16, F16 or F32). */
function checkpointDtype(dir: string): string {
  return listModelTensors(dir).get('model.embed_tokens.weight')?.info.dtype ?? 'F32';
}

/** The start-up line's text for a precision: which matmul path runs. */
export function precisionLine(p: Precision): string {
  if (p === 'fp32') return 'fp32 (float32 weights and matmuls)';
  return `bf16 weights, bf16 matmuls with fp32 accumulation: ${bf16Support().detail}`;
}

/** Whether a checkpoint tensor is kept 16-bit in bf16 mode: 2-D linear, embedding and lm_head weights. */
export function keeps16(name: string, shape: number[]): boolean {
  return shape.length === 2 && shape[1] % 2 === 0 && name.endsWith('.weight') && !name.endsWith('norm.weight');
}

/** x W^T for a frozen weight (float32 or packed bf16); x [N, in], W [out, in] -> [N, out]. */
export function matMulWT(x: tf.Tensor2D, W: tf.Tensor2D): tf.Tensor2D {
  return ops.isBf16(W) ? ops.matMulBf16(x, W, true) : tf.matMul(x, W, false, true);
}

/** d W for a frozen weight; d [N, out], W [out, in] -> [N, in]. */
export function matMulW(d: tf.Tensor2D, W: tf.Tensor2D): tf.Tensor2D {
  return ops.isBf16(W) ? ops.matMulBf16(d, W, false) : tf.matMul(d, W);
}

/** Embedding rows E[ids] as float32 [N, C]; a packed bf16 E is gathered packed and widened (exact). */
export function embedRows(E: tf.Tensor2D, ids: Int32Array): tf.Tensor2D {
  const idx = tf.tensor1d(ids, 'int32');
  if (!ops.isBf16(E)) return tf.gather(E, idx) as tf.Tensor2D;
  const packed = tf.gather(E, idx);
  const p = packed.dataSync() as Int32Array;
  const out = new Uint32Array(2 * p.length);
  for (let i = 0; i < p.length; i++) {
    out[2 * i] = p[i] << 16; // little-endian: the low half is the first bf16
    out[2 * i + 1] = p[i] & 0xffff0000;
  }
  packed.dispose();
  idx.dispose();
  return tf.tensor2d(new Float32Array(out.buffer), [ids.length, 2 * E.shape[1]]);
}
