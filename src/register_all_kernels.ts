// Plain registration lists (tfjs register_all_* style), applied by src/backend/index.ts:
// NATIVE_KERNELS replace cpu kernels on 'native' (C++ in kernels/); OP_KERNELS are the TS reference kernels of
// the fused ops in src/ops, registered for 'cpu' and 'native' (a native version in NATIVE_KERNELS wins);
// GRADIENTS are registered for every backend (and replace tfjs-core's where the name is the same).
import type { GradConfig, KernelConfig } from '@tensorflow/tfjs-core';
import { batchMatMulConfig } from './kernels/BatchMatMul.ts';
import { fusedMatMulConfig } from './kernels/_FusedMatMul.ts';
import { batchMatMulGradConfig } from './gradients/BatchMatMul_grad.ts';

export const NATIVE_KERNELS: KernelConfig[] = [
  batchMatMulConfig,
  fusedMatMulConfig,
];

export const OP_KERNELS: KernelConfig[] = [];

export const GRADIENTS: GradConfig[] = [
  batchMatMulGradConfig,
];
