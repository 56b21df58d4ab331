// Registers the fused ops' reference kernels for 'cpu' and the gradients (once), see src/register_all_kernels.ts.
import * as tf from '@tensorflow/tfjs-core';
import { GRADIENTS, OP_KERNELS } from '../register_all_kernels.ts';

let done = false;

/** Call after tfjs-core's own gradients are registered (ours replace some of them). */
export function registerOpKernels(): void {
  if (done) return;
  done = true;
  for (const k of OP_KERNELS) if (!tf.getKernel(k.kernelName, 'cpu')) tf.registerKernel({ ...k, backendName: 'cpu' });
  // The gradient registry is a global Map; replacing an entry directly avoids tfjs' "overriding" warning.
  const registry = (globalThis as { _tfGlobals?: Map<string, Map<string, tf.GradConfig>> })._tfGlobals?.get(
    'gradRegistry',
  );
  for (const g of GRADIENTS) {
    registry?.delete(g.kernelName);
    tf.registerGradient(g);
  }
}
