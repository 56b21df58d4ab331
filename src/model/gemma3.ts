// Gemma 3 pieces of the decoder (HF modeling_gemma3.py): Gemma3RMSNorm's (1 + weight) and Gemma3ForCausalLM's
// final logit soft-capping (Gemma3MLP's gelu_pytorch_tanh gate is the GeluTanhMul op). Plain tfjs ops.
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

/** logits = cap * tanh(logits / cap) (Gemma final_logit_softcapping); identity when cap is null. */
export function softcapLogits<T extends tf.Tensor>(logits: T, cap: number | null): T {
  if (!cap) return logits;
  return tf.tidy(() => tf.mul(tf.tanh(tf.div(logits, cap)), cap)) as T;
}
