// Plain registration lists (tfjs register_all_* style), applied by src/backend/index.ts:
// NATIVE_KERNELS replace cpu kernels on 'native' (C++ in kernels/); OP_KERNELS are the TS reference kernels of
// the fused ops in src/ops, registered for 'cpu' (and copied to 'native' unless a native version exists);
// GRADIENTS are registered for every backend (and replace tfjs-core's where the name is the same).
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
import { fusedAttentionGradConfig } from './gradients/FusedAttention_grad.ts';
import { weightedCrossEntropyGradConfig } from './gradients/WeightedCrossEntropy_grad.ts';
import { rmsNormGradConfig } from './gradients/RmsNorm_grad.ts';
import { swigluGradConfig } from './gradients/Swiglu_grad.ts';
import { geluTanhMulGradConfig } from './gradients/GeluTanhMul_grad.ts';
import { ropeGradConfig } from './gradients/Rope_grad.ts';
import { loraLinearGradConfig } from './gradients/LoraLinear_grad.ts';
import { matMulBf16GradConfig } from './gradients/MatMulBf16_grad.ts';

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
  ...matMulBf16Configs,
];

export const NATIVE_KERNELS: KernelConfig[] = [
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

export const OP_KERNELS: KernelConfig[] = FUSED.filter((k) => k.backendName === 'cpu');

export const GRADIENTS: GradConfig[] = [
  batchMatMulGradConfig,
  fusedAttentionGradConfig,
  weightedCrossEntropyGradConfig,
  rmsNormGradConfig,
  swigluGradConfig,
  geluTanhMulGradConfig,
  ropeGradConfig,
  matMulBf16GradConfig,
  loraLinearGradConfig,
];
