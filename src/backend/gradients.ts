// Registers tfjs-core's gradients. They ship only as ESM files with extension-less imports (no CJS bundle),
// so a small resolve hook (tfjs_esm_hook.mjs) is installed first; gradient registries are global, so these
// register for the same engine as the '@tensorflow/tfjs-core' package main.
import { register } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';

let loading: Promise<void> | undefined;

export function registerTfjsGradients(): Promise<void> {
  if (tf.getGradient('BatchMatMul')) return Promise.resolve();
  loading ??= (async () => {
    register('./tfjs_esm_hook.mjs', import.meta.url);
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js' as string);
    if (!tf.getGradient('BatchMatMul')) throw new Error('tfjs gradients did not register');
  })();
  return loading;
}
