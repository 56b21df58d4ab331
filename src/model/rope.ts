// Rotary position embedding tables as in HF transformers (modeling_rope_utils.py); the rotation is the Rope op.
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from './config.ts';

/** inv_freq[i] = 1 / theta^(2i/D) for i < D/2, then the config's rope_scaling (HF _compute_*_parameters). */
export function ropeInvFreq(cfg: ModelConfig): Float64Array {
  const D = cfg.headDim;
  const inv = new Float64Array(D / 2);
  for (let i = 0; i < D / 2; i++) inv[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / D);
  const rs = cfg.ropeScaling;
  if (rs.type === 'linear') for (let i = 0; i < inv.length; i++) inv[i] /= rs.factor;
  if (rs.type === 'llama3') {
    // HF _compute_llama3_parameters: keep high frequencies, divide low ones by factor, interpolate in between.
    const lowWave = rs.originalMaxPositionEmbeddings / rs.lowFreqFactor;
    const highWave = rs.originalMaxPositionEmbeddings / rs.highFreqFactor;
    for (let i = 0; i < inv.length; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      const scaled = wavelen > lowWave ? inv[i] / rs.factor : inv[i];
      if (wavelen < highWave || wavelen > lowWave) inv[i] = scaled;
      else {
        const smooth =
          (rs.originalMaxPositionEmbeddings / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
        inv[i] = (1 - smooth) * (scaled / rs.factor) + smooth * scaled;
      }
    }
  }
  return inv;
}

/** cos/sin tables [N, D] for the given positions: emb = cat(freqs, freqs), freqs = pos * inv_freq. */
export function ropeTables(invFreq: Float64Array, positions: Int32Array): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = invFreq.length;
  const D = 2 * half;
  const N = positions.length;
  const cos = new Float32Array(N * D);
  const sin = new Float32Array(N * D);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < half; i++) {
      // float32 product first, as HF computes freqs in float32 (matters for large positions).
      const a = Math.fround(Math.fround(invFreq[i]) * positions[n]);
      const c = Math.cos(a);
      const s = Math.sin(a);
      cos[n * D + i] = cos[n * D + i + half] = c;
      sin[n * D + i] = sin[n * D + i + half] = s;
    }
  }
  return { cos: tf.tensor2d(cos, [N, D]), sin: tf.tensor2d(sin, [N, D]) };
}
