// AdamW with decoupled weight decay (Loshchilov & Hutter), the update of PyTorch's torch.optim.AdamW
// (bias-corrected moments, eps added after the bias-corrected sqrt). Parameters, moments and gradients are
// plain Float32Arrays keyed by PEFT name: LoRA matrices are small, and doing the arithmetic here in float64
// (rounded to float32 on store) makes every step reproducible bit for bit on any backend. The loop runs in C++
// (kernels/AdamW.cc) when the addon is loaded, with the same operation order: bit-identical to adamwUpdateRef.

import { loadAddon } from '../backend/addon.ts';

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
  const names = [...params.keys()];
  const gs = names.map((name) => {
    const g = grads.get(name);
    if (!g) throw new Error(`adamwStep: no gradient for '${name}'`);
    if (g.length !== params.get(name)!.length)
      throw new Error(
        `adamwStep: gradient of '${name}' has ${g.length} values, the parameter ${params.get(name)!.length}`,
      );
    return g;
  });
  const addon = loadAddon().addon;
  if (addon) {
    // One call, one parallel region for all tensors (a region per LoRA matrix costs more than its update).
    const s = adamwScalars(cfg, lr, t, false);
    const keeps = names.map((n) => adamwScalars(cfg, lr, t, decay(n)).keep);
    const [ps, ms, vs] = [params, state.m, state.v].map((m) => names.map((n) => m.get(n)!));
    addon.adamWMany(ps, gs, ms, vs, keeps, s.beta1, s.beta2, s.eps, s.stepSize, s.sqrtBc2);
    return;
  }
  names.forEach((name, i) =>
    adamwUpdateRef(
      params.get(name)!,
      gs[i],
      state.m.get(name)!,
      state.v.get(name)!,
      adamwScalars(cfg, lr, t, decay(name)),
    ),
  );
}

/** Per-step constants of the update, in float64: keep = 1 - lr*wd (1 without decay), stepSize = lr / (1 - b1^t),
 *  sqrtBc2 = sqrt(1 - b2^t). */
export interface AdamWScalars {
  beta1: number;
  beta2: number;
  eps: number;
  keep: number;
  stepSize: number;
  sqrtBc2: number;
}

export function adamwScalars(cfg: AdamWConfig, lr: number, t: number, decay: boolean): AdamWScalars {
  return {
    beta1: cfg.beta1,
    beta2: cfg.beta2,
    eps: cfg.eps,
    keep: decay ? 1 - lr * cfg.weightDecay : 1,
    stepSize: lr / (1 - cfg.beta1 ** t),
    sqrtBc2: Math.sqrt(1 - cfg.beta2 ** t),
  };
}

export type AdamWUpdate = (p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, s: AdamWScalars) => void;

/** The reference update of one tensor [n], in place on p, m, v (float64 arithmetic, float32 stores). */
export const adamwUpdateRef: AdamWUpdate = (p, g, m, v, s) => {
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    m[i] = s.beta1 * m[i] + (1 - s.beta1) * gi;
    v[i] = s.beta2 * v[i] + (1 - s.beta2) * gi * gi;
    p[i] = p[i] * s.keep - (s.stepSize * m[i]) / (Math.sqrt(v[i]) / s.sqrtBc2 + s.eps);
  }
};

/** The same update in C++ (kernels/AdamW.cc `adamWMany` on one tensor, same operation order: bit-identical) when the
 *  addon is loaded (OpenBLAS not needed); null otherwise. adamwStep makes one such call for all tensors. */
export function adamwNative(): AdamWUpdate | null {
  const addon = loadAddon().addon;
  if (!addon) return null;
  return (p, g, m, v, s) => {
    if (g.length !== p.length || m.length !== p.length || v.length !== p.length) {
      throw new Error(
        `adamw: gradient/moment lengths ${g.length}/${m.length}/${v.length} differ from the parameter's ${p.length}`,
      );
    }
    addon.adamWMany([p], [g], [m], [v], [s.keep], s.beta1, s.beta2, s.eps, s.stepSize, s.sqrtBc2);
  };
}

/** Global L2 norm of all gradients. */
export function gradNorm(grads: Map<string, Float32Array>): number {
  let s = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return Math.sqrt(s);
}

/**
 * torch.nn.utils.clip_grad_norm_: scale all gradients by min(1, maxNorm / (norm + 1e-6)). Returns the norm before
 * clipping; `norm` is gradNorm(grads), given when known (accumulateStep's sumSquares: one pass fewer).
 */
export function clipGradNorm(grads: Map<string, Float32Array>, maxNorm: number, norm = gradNorm(grads)): number {
  if (maxNorm > 0 && Number.isFinite(norm)) {
    const scale = maxNorm / (norm + 1e-6);
    if (scale < 1) for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= scale;
  }
  return norm;
}
