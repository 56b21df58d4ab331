// Fused weighted cross-entropy (loss + dloss/dh) at Qwen3-0.6B's lm_head shape, per chunk size.
// Usage: npm run bench -- ce [--rows 110,220,512]   (M=511 rows, C=1024, V=151936: 318 GFLOP per call)
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.ts';
import { ceChunkRows, crossEntropyWeighted } from '../src/ops/index.ts';

const i = process.argv.indexOf('--rows');
const M = 511,
  C = 1024,
  V = 151936;
const rowsList = i >= 0 ? process.argv[i + 1].split(',').map(Number) : [110, ceChunkRows(V), 512];
const choice = await initBackend({});
console.log(`backend: ${choice.name} (${choice.reason})`);
const h = tf.randomNormal([M, C]) as tf.Tensor2D,
  W = tf.mul(tf.randomNormal([V, C]), 0.02) as tf.Tensor2D;
const labels = Int32Array.from({ length: M }, (_, j) => (j * 7919) % V),
  w = new Float32Array(M).fill(1);
for (const rep of [0, 1]) {
  for (const rows of rowsList) {
    const t0 = performance.now();
    tf.tidy(() => crossEntropyWeighted(h, W, labels, w, { chunkRows: rows }).dataSync());
    const s = (performance.now() - t0) / 1000;
    console.log(
      `${rep ? '' : '(first) '}rows ${rows}: ${s.toFixed(2)} s, ${((4 * M * C * V) / s / 1e9).toFixed(0)} GFLOP/s`,
    );
  }
}
