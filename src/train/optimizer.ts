// AdamW with decoupled weight decay (Loshchilov & Hutter), the update of PyTorch's torch.optim.AdamW
// (bias-corrected moments, eps added after the bias-corrected sqrt). Parameters, moments and gradients are
// plain Float32Arrays keyed by PEFT name: LoRA matrices are small, and doing the arithmetic here in float64
// (rounded to float32 on store) makes every step reproducible bit for bit on any backend.

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

export interface AdamWState {
  /** Optimizer steps taken so far (t of the bias correction). */
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

export function createAdamWState(params: Map<string, Float32Array>): AdamWState {
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  for (const [k, p] of params) {
    m.set(k, new Float32Array(p.length));
    v.set(k, new Float32Array(p.length));
  }
  return { step: 0, m, v };
}

/**
 * One AdamW step in place. `decay(name)` says whether weight decay applies (PyTorch practice: not on biases
 * or norm weights; every LoRA A/B matrix is a weight, so the trainer decays all of them).
 *   p <- p * (1 - lr*wd);  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
 *   p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 */
export function adamwStep(
  params: Map<string, Float32Array>,
  grads: Map<string, Float32Array>,
  state: AdamWState,
  lr: number,
  cfg: AdamWConfig,
  decay: (name: string) => boolean = () => true,
): void {
  const t = ++state.step;
  const bc1 = 1 - cfg.beta1 ** t;
  const sqrtBc2 = Math.sqrt(1 - cfg.beta2 ** t);
  const stepSize = lr / bc1;
  for (const [name, p] of params) {
    const g = grads.get(name);
    if (!g) throw new Error(`adamwStep: no gradient for '${name}'`);
    const m = state.m.get(name)!;
    const v = state.v.get(name)!;
    const keep = decay(name) ? 1 - lr * cfg.weightDecay : 1;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * gi;
      v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * gi * gi;
      p[i] = p[i] * keep - (stepSize * m[i]) / (Math.sqrt(v[i]) / sqrtBc2 + cfg.eps);
    }
  }
}

/** Global L2 norm of all gradients. */
export function gradNorm(grads: Map<string, Float32Array>): number {
  let s = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return Math.sqrt(s);
}

/** torch.nn.utils.clip_grad_norm_: scale all gradients by min(1, maxNorm / (norm + 1e-6)). Returns the norm before clipping. */
export function clipGradNorm(grads: Map<string, Float32Array>, maxNorm: number): number {
  const norm = gradNorm(grads);
  if (maxNorm > 0 && Number.isFinite(norm)) {
    const scale = maxNorm / (norm + 1e-6);
    if (scale < 1) for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= scale;
  }
  return norm;
}
