// Fused attention forward + backward with and without a sliding window, at gemma-3-270m's attention shape.
// Usage: npm run bench -- attention [--seq 2048] [--windows 0,512,128]   (H=4, Hkv=1, D=256; 0 = full causal)
// A window skips the key blocks left of it, so the time should fall roughly with window / seq.
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.ts';
import { attention } from '../src/ops/index.ts';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const T = Number(arg('--seq', '2048')),
  H = 4,
  Hkv = 1,
  D = 256;
const windows = arg('--windows', '0,512,128').split(',').map(Number);
const choice = await initBackend({});
console.log(`backend: ${choice.name} (${choice.reason}); B=1 T=${T} H=${H} Hkv=${Hkv} D=${D}`);
const q = tf.randomNormal([1, T, H, D]) as tf.Tensor4D,
  k = tf.randomNormal([1, T, Hkv, D]) as tf.Tensor4D;
const v = tf.randomNormal([1, T, Hkv, D]) as tf.Tensor4D,
  dy = tf.randomNormal([1, T, H, D]);
const seg = new Int32Array(T);
const times = new Map<number, number>();
for (const rep of [0, 1, 2]) {
  for (const w of windows) {
    const t0 = performance.now();
    tf.tidy(() => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(attention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, seg, 1 / 16, w), dy)),
      );
      for (const t of g([q, k, v])) t.dataSync();
    });
    const ms = performance.now() - t0;
    if (rep > 0) times.set(w, Math.min(times.get(w) ?? Infinity, ms));
  }
}
const full = times.get(0);
for (const [w, ms] of times) {
  console.log(
    `window ${w || 'none'}: forward+backward ${ms.toFixed(1)} ms${full && w ? ` (${(ms / full).toFixed(2)} x full)` : ''}`,
  );
}
