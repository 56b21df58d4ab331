// Activation checkpointing (as torch.utils.checkpoint): run a block without recording its activations, keep
// only its input, and recompute the block under a fresh tape during the backward pass.
import * as tf from '@tensorflow/tfjs-core';

interface EngineState {
  state: { activeTape: unknown };
}

/**
 * y = block(x, consts), differentiable wrt x and `vars` (the trainable tensors the block reads, e.g. one layer's
 * LoRA A/B), holding only x and `consts` (non-differentiable inputs such as RoPE tables, which the caller may
 * dispose before the backward pass) between forward and backward. block must be deterministic (same dropout seeds).
 */
export function checkpointed(
  block: (x: tf.Tensor, consts: tf.Tensor[]) => tf.Tensor,
  x: tf.Tensor,
  vars: tf.Variable[],
  consts: tf.Tensor[] = [],
): tf.Tensor {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xin = args[0] as tf.Tensor;
    save([xin, ...consts]);
    // Ops inside a customGrad forward are not taped: no activations are kept.
    const value = block(xin, consts);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      // The backward pass runs after the outer tape has been closed; tf.grads would replace the engine's
      // active tape (and drop it when done), so the outer one is put back afterwards.
      const engine = tf.engine() as unknown as EngineState;
      const outer = engine.state.activeTape;
      try {
        return tf.grads((x0: tf.Tensor, ..._vs: tf.Tensor[]) => block(x0, saved.slice(1)))([saved[0], ...vars], dy);
      } finally {
        engine.state.activeTape = outer;
      }
    };
    return { value, gradFunc };
  });
  return f(x, ...vars);
}
