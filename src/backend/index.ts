// Backend choice: 'tensorflow' (tfjs-node(-gpu), if the user installed it) > 'native' > 'cpu'.
// Placeholder until the native backend lands: always 'cpu'.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';

export interface BackendChoice {
  name: string;
  reason: string;
}

export async function initBackend(opts: { backend?: string; threads?: number } = {}): Promise<BackendChoice> {
  await tf.setBackend(opts.backend ?? 'cpu');
  await tf.ready();
  return { name: tf.getBackend(), reason: 'default' };
}
