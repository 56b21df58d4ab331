// Gemma 3 pieces of the decoder (HF modeling_gemma3.py): Gemma3RMSNorm's (1 + weight), the gelu_pytorch_tanh
// gate of Gemma3MLP, and Gemma3ForCausalLM's final logit soft-capping. Plain tfjs ops, differentiable.
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from './config.ts';

/**
 * Norm weights as the kernels use them: 1 + w in float32 (HF: output * (1.0 + weight.float())) for every
 * '*norm.weight' of a (1 + w) family; an empty map otherwise. The stored weights stay as in the checkpoint.
 */
export function plusOneNorms(cfg: ModelConfig, weights: Map<string, tf.Tensor>): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  if (!cfg.normPlusOne) return out;
  for (const [name, w] of weights) if (name.endsWith('norm.weight')) out.set(name, tf.add(w, 1));
  return out;
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** gelu_tanh(gate) * up, gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). gate/up [N, I]. */
export function geluTanhMul(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const inner = tf.mul(tf.add(gate, tf.mul(tf.pow(gate, 3), 0.044715)), GELU_C);
    const g = tf.mul(tf.mul(gate, 0.5), tf.add(tf.tanh(inner), 1));
    return tf.mul(g, up) as tf.Tensor2D;
  });
}

/** logits = cap * tanh(logits / cap) (Gemma final_logit_softcapping); identity when cap is null. */
export function softcapLogits<T extends tf.Tensor>(logits: T, cap: number | null): T {
  if (!cap) return logits;
  return tf.tidy(() => tf.mul(tf.tanh(tf.div(logits, cap)), cap)) as T;
}
