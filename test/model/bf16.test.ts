// bf16 mode on a tiny bf16 checkpoint: 16-bit weights stay 16-bit at load, the native path (oneDNN or fallback)
// matches the TS reference kernels under the same bf16 rounding, and loss/gradients stay close to fp32 mode.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { loadBaseModel, lossAndGrads, type BaseModel, type Batch } from '../../src/model/model.ts';
import { nativeAvailability } from '../../src/backend/native_backend.ts';
import { ensureBackend, randomLora, tinyModelDir } from './helpers.ts';

const native = nativeAvailability();
let dir = '';
const T = 40;
const batch: Batch = {
  B: 1,
  T,
  inputIds: Int32Array.from({ length: T }, (_, i) => (i * 11 + 3) % 64),
  positionIds: Int32Array.from({ length: T }, (_, i) => i % 25),
  weights: Float32Array.from({ length: T }, (_, i) => (i % 25 ? 1 : 0)),
};

/** Loss sum and every LoRA gradient (concatenated) of the model loaded at `precision` on `backend`. */
async function lossGrads(
  precision: 'fp32' | 'bf16',
  backend: string,
  fused = true,
  from = dir,
): Promise<{ loss: number; g: Float32Array; base: BaseModel }> {
  await tf.setBackend(backend);
  const base = await loadBaseModel(from, { precision });
  const lora = randomLora(base);
  const r = lossAndGrads(base, lora, batch, { fused });
  const parts = [...r.grads.values()].map((t) => t.dataSync() as Float32Array);
  const g = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((o, p) => (g.set(p, o), o + p.length), 0);
  tf.dispose([...r.grads.values(), ...lora.values()]);
  return { loss: r.lossSum, g, base };
}

/** |a - b| / |b| over whole vectors (L2). */
function relL2(a: Float32Array, b: Float32Array): number {
  let d = 0,
    n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / n);
}

beforeAll(async () => {
  await ensureBackend();
  dir = tinyModelDir({ family: 'qwen3', vocab: 64, dtype: 'bf16' });
});

describe('bf16 mode', () => {
  it('keeps 2-D weights packed 16-bit (two bf16 per int32) and norms float32', async () => {
    await tf.setBackend('cpu');
    const base = await loadBaseModel(dir, { precision: 'bf16' });
    expect(base.weights.get('model.layers.0.mlp.up_proj.weight')!.dtype).toBe('int32');
    expect(base.weights.get('model.layers.0.mlp.up_proj.weight')!.shape).toEqual([48, 16]);
    expect(base.weights.get('model.embed_tokens.weight')!.dtype).toBe('int32');
    expect(base.weights.get('model.norm.weight')!.dtype).toBe('float32');
    const fp = await loadBaseModel(dir);
    expect(fp.weights.get('model.layers.0.mlp.up_proj.weight')!.dtype).toBe('float32');
  });

  it('loss and LoRA gradients stay within bf16 rounding of fp32 mode (reference kernels)', async () => {
    const bf = await lossGrads('bf16', 'cpu'),
      fp = await lossGrads('fp32', 'cpu');
    const dl = Math.abs(bf.loss - fp.loss) / Math.abs(fp.loss),
      dg = relL2(bf.g, fp.g);
    console.log(
      `bf16 vs fp32 (cpu reference): loss rel diff ${dl.toExponential(2)}, LoRA grads rel L2 diff ${dg.toExponential(2)}`,
    );
    expect(dl).toBeLessThan(1e-2);
    expect(dg).toBeLessThan(5e-2);
  });

  it.skipIf(!native.ok)(
    'native bf16 (oneDNN, fused and plain ops) matches the reference kernels under the same rounding',
    async () => {
      // Each against the same ops on 'cpu' (the plain path's tfjs attention has no bf16 products).
      for (const fused of [true, false]) {
        const ref = await lossGrads('bf16', 'cpu', fused);
        const nat = await lossGrads('bf16', 'native', fused);
        const dl = Math.abs(nat.loss - ref.loss) / Math.abs(ref.loss),
          dg = relL2(nat.g, ref.g);
        console.log(
          `bf16 native (${fused ? 'fused' : 'plain'} ops) vs cpu reference: loss rel diff ${dl.toExponential(2)}, grads rel L2 diff ${dg.toExponential(2)}`,
        );
        expect(dl).toBeLessThan(1e-4);
        expect(dg).toBeLessThan(5e-3); // summation order flips a few bf16 roundings of activations
      }
    },
  );

  // The other families through the same check: Qwen2's q/k/v biases (loraLinearGroup members with a bias), Llama
  // (no q/k norm), Gemma 3 (sandwich norms, GELU MLP, sliding-window layers).
  it.skipIf(!native.ok).each(['qwen2', 'llama', 'gemma3'] as const)(
    'native bf16 (fused ops) matches the reference kernels on a tiny %s',
    async (family) => {
      const from = tinyModelDir({
        family,
        vocab: 64,
        dtype: 'bf16',
        ...(family === 'gemma3' ? { slidingWindow: 8 } : {}),
      });
      const ref = await lossGrads('bf16', 'cpu', true, from);
      const nat = await lossGrads('bf16', 'native', true, from);
      const dl = Math.abs(nat.loss - ref.loss) / Math.abs(ref.loss),
        dg = relL2(nat.g, ref.g);
      console.log(
        `${family} bf16 native vs cpu reference: loss rel diff ${dl.toExponential(2)}, grads ${dg.toExponential(2)}`,
      );
      expect(dl).toBeLessThan(1e-4);
      expect(dg).toBeLessThan(5e-3);
    },
  );
});
