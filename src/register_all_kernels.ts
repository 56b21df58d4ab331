// Every kernel and gradient lorasft registers, and the one function that registers them (tfjs register_all_*
// style). NATIVE_KERNELS: for 'native', C++ (kernels/); OP_KERNELS: the TypeScript reference kernels of the fused
// ops in src/ops, for 'cpu'; GRADIENTS: for every backend, replacing tfjs-core's where the name is the same.
import { register } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu'; // registers 'cpu' and its kernels, which steps 3 and 4 build on
import type { GradConfig, KernelConfig } from '@tensorflow/tfjs-core';
import { batchMatMulConfig } from './kernels/BatchMatMul.ts';
import { fusedMatMulConfig } from './kernels/_FusedMatMul.ts';
import { fusedAttentionConfigs, fusedAttentionGradConfigs } from './kernels/FusedAttention.ts';
import { weightedCrossEntropyConfigs } from './kernels/WeightedCrossEntropy.ts';
import { rmsNormConfigs, rmsNormGradConfigs } from './kernels/RmsNorm.ts';
import { swigluConfigs, swigluGradConfigs } from './kernels/Swiglu.ts';
import { geluTanhMulConfigs, geluTanhMulGradConfigs } from './kernels/GeluTanhMul.ts';
import { ropeConfigs } from './kernels/Rope.ts';
import { loraLinearConfigs, loraLinearGradConfigs } from './kernels/LoraLinear.ts';
import { loraLinearGroupConfigs, loraLinearGroupGradConfigs } from './kernels/LoraLinearGroup.ts';
import {
  addConfig,
  multiplyConfig,
  realDivConfig,
  softmaxConfig,
  subConfig,
  transposeConfig,
} from './kernels/Elementwise.ts';
import { unsortedSegmentSumConfig } from './kernels/UnsortedSegmentSum.ts';
import { gatherV2Config } from './kernels/GatherV2.ts';
import { matMulBf16Configs } from './kernels/MatMulBf16.ts';
import { batchMatMulGradConfig } from './gradients/BatchMatMul_grad.ts';
import {
  fusedAttentionGradConfig,
  fusedAttentionNormRopeGradConfig,
  fusedAttentionRopeGradConfig,
} from './gradients/FusedAttention_grad.ts';
import { weightedCrossEntropyGradConfig } from './gradients/WeightedCrossEntropy_grad.ts';
import { rmsNormGradConfig } from './gradients/RmsNorm_grad.ts';
import { swigluGradConfig } from './gradients/Swiglu_grad.ts';
import { geluTanhMulGradConfig } from './gradients/GeluTanhMul_grad.ts';
import { ropeGradConfig } from './gradients/Rope_grad.ts';
import { loraLinearGradConfig } from './gradients/LoraLinear_grad.ts';
import { loraLinearGroupGradConfig } from './gradients/LoraLinearGroup_grad.ts';
import { matMulBf16GradConfig } from './gradients/MatMulBf16_grad.ts';
import { useFreeingBackprop } from './gradients/backprop.ts';

const FUSED: KernelConfig[] = [
  ...fusedAttentionConfigs,
  ...fusedAttentionGradConfigs,
  ...weightedCrossEntropyConfigs,
  ...rmsNormConfigs,
  ...rmsNormGradConfigs,
  ...swigluConfigs,
  ...swigluGradConfigs,
  ...geluTanhMulConfigs,
  ...geluTanhMulGradConfigs,
  ...ropeConfigs,
  ...loraLinearConfigs,
  ...loraLinearGradConfigs,
  ...loraLinearGroupConfigs,
  ...loraLinearGroupGradConfigs,
  ...matMulBf16Configs,
];

const NATIVE_KERNELS: KernelConfig[] = [
  batchMatMulConfig,
  fusedMatMulConfig,
  addConfig,
  subConfig,
  multiplyConfig,
  realDivConfig,
  softmaxConfig,
  transposeConfig,
  unsortedSegmentSumConfig,
  gatherV2Config,
  ...FUSED.filter((k) => k.backendName === 'native'),
];

const OP_KERNELS: KernelConfig[] = FUSED.filter((k) => k.backendName === 'cpu');

const GRADIENTS: GradConfig[] = [
  batchMatMulGradConfig,
  fusedAttentionGradConfig,
  fusedAttentionRopeGradConfig,
  fusedAttentionNormRopeGradConfig,
  weightedCrossEntropyGradConfig,
  rmsNormGradConfig,
  swigluGradConfig,
  geluTanhMulGradConfig,
  ropeGradConfig,
  matMulBf16GradConfig,
  loraLinearGradConfig,
  loraLinearGroupGradConfig,
];

/**
 * tfjs-core's own gradients (global registry: they serve the package main's engine); skipped if tfjs-node did it.
 * The hook is needed because they ship only as ESM with extension-less imports, which Node's ESM loader rejects.
 */
async function registerTfjsGradients(): Promise<void> {
  if (tf.getGradient('BatchMatMul')) return;
  register('./backend/tfjs_esm_hook.mjs', import.meta.url);
  await import('@tensorflow/tfjs-core/dist/register_all_gradients.js' as string);
  if (!tf.getGradient('BatchMatMul')) throw new Error('tfjs gradients did not register');
}

/** Replaces a gradient in tfjs' global registry (deleting first avoids its "overriding" warning). */
function replaceGradient(g: tf.GradConfig): void {
  const globals = (globalThis as { _tfGlobals?: Map<string, Map<string, tf.GradConfig>> })._tfGlobals;
  globals?.get('gradRegistry')?.delete(g.kernelName);
  tf.registerGradient(g);
}

let common: Promise<void> | undefined;
let nativeDone = false;

/**
 * Registers everything, in the order the registries need; idempotent. `native`: also the kernels of the
 * 'native' backend (src/backend/native_backend.ts); pass it once the addon is known to load.
 */
export async function registerAllKernels(opts: { native: boolean }): Promise<void> {
  common ??= (async () => {
    // 1. tfjs-core's gradients first: 2 replaces some of them.
    await registerTfjsGradients();
    // 2. Ours (the fused ops' and BatchMatMul's, which replaces tfjs-core's).
    for (const g of GRADIENTS) replaceGradient(g);
    // ... and the walk that runs them, freeing as it goes (src/gradients/backprop.ts).
    useFreeingBackprop();
    // 3. The fused ops' TypeScript references on 'cpu', next to tfjs-backend-cpu's kernels.
    for (const k of OP_KERNELS) if (!tf.getKernel(k.kernelName, 'cpu')) tf.registerKernel(k);
  })();
  await common;
  if (!opts.native || nativeDone) return;
  nativeDone = true;
  // 4. 'native' is a MathBackendCPU: every 'cpu' kernel (3's included) is copied to it, after 3 ...
  for (const k of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...k, backendName: 'native' });
  // 5. ... and the C++ kernels then replace their copies.
  for (const k of NATIVE_KERNELS) {
    if (tf.getKernel(k.kernelName, 'native')) tf.unregisterKernel(k.kernelName, 'native');
    tf.registerKernel(k);
  }
}
