// LoRA weights as in PEFT (tuners/lora/layer.py): y = W x + s * B(A(dropout(x))), s = alpha/r (rsLoRA: alpha/sqrt r).
// A [r, in] kaiming-uniform(a=sqrt 5) = U(-1/sqrt(in), 1/sqrt(in)); B [out, r] zeros. Only A and B are trainable.
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.ts';
import type { ModelConfig } from './config.ts';
import { Rng } from '../util/random.ts';

export interface LoraConfig {
  rank: number;
  alpha: number;
  targets: string[];
  dropout: number;
  useRslora: boolean;
}

export const DEFAULT_LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const ATTN = new Set(['q_proj', 'k_proj', 'v_proj', 'o_proj']);
const MLP = new Set(['gate_proj', 'up_proj', 'down_proj']);
export const PEFT_PREFIX = 'base_model.model.';

/** LoRA variables keyed by PEFT name (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`), with their config. */
export class LoraWeights extends Map<string, tf.Variable> {
  constructor(readonly cfg: LoraConfig) {
    super();
  }
  /** s in y = Wx + s*BAx. */
  get scale(): number {
    return this.cfg.useRslora ? this.cfg.alpha / Math.sqrt(this.cfg.rank) : this.cfg.alpha / this.cfg.rank;
  }
  dispose(): void {
    for (const v of this.values()) v.dispose();
    this.clear();
  }
}

/** HF module path of a target linear: model.layers.{i}.self_attn.q_proj or model.layers.{i}.mlp.up_proj. */
function modulePath(layer: number, target: string): string {
  if (ATTN.has(target)) return `model.layers.${layer}.self_attn.${target}`;
  if (MLP.has(target)) return `model.layers.${layer}.mlp.${target}`;
  throw new UserError(`unknown LoRA target module '${target}' (expected some of ${DEFAULT_LORA_TARGETS.join(', ')})`);
}

export const loraAName = (module: string) => `${PEFT_PREFIX}${module}.lora_A.weight`;
export const loraBName = (module: string) => `${PEFT_PREFIX}${module}.lora_B.weight`;

/** [out, in] of a target linear. */
export function linearShape(cfg: ModelConfig, target: string): [number, number] {
  const C = cfg.hiddenSize;
  const qd = cfg.numHeads * cfg.headDim;
  const kvd = cfg.numKvHeads * cfg.headDim;
  switch (target) {
    case 'q_proj':
      return [qd, C];
    case 'k_proj':
    case 'v_proj':
      return [kvd, C];
    case 'o_proj':
      return [C, qd];
    case 'gate_proj':
    case 'up_proj':
      return [cfg.intermediateSize, C];
    case 'down_proj':
      return [C, cfg.intermediateSize];
  }
  throw new UserError(`unknown LoRA target module '${target}' (expected some of ${DEFAULT_LORA_TARGETS.join(', ')})`);
}

/** The ranks a job may train (the managed service's rule): the powers of two from 1 to 32. */
export const LORA_RANKS: readonly number[] = [1, 2, 4, 8, 16, 32];

/** Training rule: rank in LORA_RANKS; targets known; dropout in [0, 1). */
function validateLoraConfig(cfg: LoraConfig): void {
  if (!LORA_RANKS.includes(cfg.rank)) {
    throw new UserError(`LoRA rank ${cfg.rank} is not allowed (expected a power of 2 from 1 to 32)`);
  }
  if (!(cfg.alpha > 0)) throw new UserError(`LoRA alpha ${cfg.alpha} must be positive`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new UserError(`LoRA dropout ${cfg.dropout} must be in [0, 1)`);
  if (cfg.targets.length === 0) throw new UserError('LoRA needs at least one target module');
  for (const t of cfg.targets)
    linearShape({ hiddenSize: 1, numHeads: 1, headDim: 1, numKvHeads: 1, intermediateSize: 1 } as ModelConfig, t);
}

/** Fresh LoRA for every layer x target, layer-major then target order; deterministic given seed. */
export function initLora(base: { config: ModelConfig }, cfg: LoraConfig, seed: number): LoraWeights {
  validateLoraConfig(cfg);
  const rng = new Rng(seed);
  const lora = new LoraWeights(cfg);
  for (let i = 0; i < base.config.numLayers; i++) {
    for (const t of cfg.targets) {
      const [out, inp] = linearShape(base.config, t);
      const bound = 1 / Math.sqrt(inp);
      const m = modulePath(i, t);
      lora.set(
        loraAName(m),
        tf.variable(tf.tensor2d(rng.fillUniform(cfg.rank * inp, -bound, bound), [cfg.rank, inp]), true),
      );
      lora.set(loraBName(m), tf.variable(tf.zeros([out, cfg.rank]), true));
    }
  }
  return lora;
}

type LoraTensor = { shape: number[]; data: Float32Array };

/** One adapted linear: its HF module path (model.layers.0.self_attn.q_proj), target, A [r, in] and B [out, r]. */
export interface LoraPair {
  module: string;
  target: string;
  A: LoraTensor;
  B: LoraTensor;
}

/** PEFT-named tensors grouped by module path; names and layers checked against the model. */
function groupByModule(config: ModelConfig, tensors: Map<string, LoraTensor>, source: string) {
  const re = /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])(?:\.default)?\.weight$/;
  const found = new Map<string, { A?: LoraTensor; B?: LoraTensor; layer: number; target: string }>();
  for (const [name, t] of tensors) {
    const m = re.exec(name);
    if (!m)
      throw new UserError(
        `${source}: tensor '${name}' is not a LoRA weight in PEFT naming (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight)`,
      );
    const layer = Number(m[1]);
    const target = m[3];
    const mp = modulePath(layer, target);
    if (!mp.includes(`.${m[2]}.`)) throw new UserError(`${source}: tensor '${name}': ${target} is not under ${m[2]}`);
    if (layer >= config.numLayers)
      throw new UserError(`${source}: tensor '${name}': layer ${layer} but the model has ${config.numLayers}`);
    const e = found.get(mp) ?? { layer, target };
    e[m[4] as 'A' | 'B'] = t;
    found.set(mp, e);
  }
  if (found.size === 0) throw new UserError(`${source}: no LoRA tensors found`);
  return [...found.entries()].sort(
    (a, b) =>
      a[1].layer - b[1].layer || DEFAULT_LORA_TARGETS.indexOf(a[1].target) - DEFAULT_LORA_TARGETS.indexOf(b[1].target),
  );
}

/**
 * Check PEFT-named tensors (an adapter file or a checkpoint) against a model config: names, A/B pairs and shapes;
 * `source` names the file in errors. Rank comes from the shapes unless given. Pairs in layer, then target order.
 */
export function checkLoraTensors(
  config: ModelConfig,
  tensors: Map<string, LoraTensor>,
  rank: number | undefined,
  source: string,
): { rank: number; pairs: LoraPair[] } {
  const pairs: LoraPair[] = [];
  for (const [mp, e] of groupByModule(config, tensors, source)) {
    if (!e.A || !e.B)
      throw new UserError(`${source}: ${mp} has lora_${e.A ? 'A' : 'B'} but no lora_${e.A ? 'B' : 'A'}`);
    const [out, inp] = linearShape(config, e.target);
    rank ??= e.A.shape[0];
    const want = (s: number[], exp: number[], w: string) => {
      if (s.length !== 2 || s[0] !== exp[0] || s[1] !== exp[1])
        throw new UserError(`${source}: ${mp}.lora_${w}.weight has shape [${s}], expected [${exp}] (rank ${rank})`);
    };
    want(e.A.shape, [rank, inp], 'A');
    want(e.B.shape, [out, rank], 'B');
    pairs.push({ module: mp, target: e.target, A: e.A, B: e.B });
  }
  return { rank: rank!, pairs };
}

/** LoRA variables from PEFT-named tensors, checked against the model by checkLoraTensors. */
export function loraFromTensors(
  base: { config: ModelConfig },
  tensors: Map<string, LoraTensor>,
  cfg: Omit<LoraConfig, 'rank' | 'targets'> & { rank?: number },
  source: string,
): LoraWeights {
  const { rank, pairs } = checkLoraTensors(base.config, tensors, cfg.rank, source);
  const lora = new LoraWeights({ ...cfg, rank, targets: [] } as LoraConfig);
  for (const { module, A, B } of pairs) {
    lora.set(loraAName(module), tf.variable(tf.tensor2d(A.data, A.shape as [number, number]), true));
    lora.set(loraBName(module), tf.variable(tf.tensor2d(B.data, B.shape as [number, number]), true));
  }
  const targets = new Set(pairs.map((p) => p.target));
  lora.cfg.targets = DEFAULT_LORA_TARGETS.filter((t) => targets.has(t));
  return lora;
}
