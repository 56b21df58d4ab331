// Swiglu / SwigluGrad: y = silu(gate) * up (HF LlamaMLP act_fn(gate_proj(x)) * up_proj(x)), elementwise.
// dgate = dy up s (1 + gate (1 - s)), dup = dy gate s, s = sigmoid(gate). Native: kernels/Swiglu.cc.
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { Swiglu, SwigluGrad } from '../kernel_names.ts';
import { type Addon, alloc, f32, type KernelArgs, kernelConfigs } from './util.ts';

export function swigluRef(args: KernelArgs) {
  const g = f32(args.backend, args.inputs.gate), u = f32(args.backend, args.inputs.up);
  const y = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) y[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
  return [{ shape: args.inputs.gate.shape, values: y }];
}

export function swigluGradRef(args: KernelArgs) {
  const [dy, g, u] = ['dy', 'gate', 'up'].map((n) => f32(args.backend, args.inputs[n]));
  const dg = new Float32Array(g.length), du = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const s = 1 / (1 + Math.exp(-g[i]));
    du[i] = dy[i] * g[i] * s;
    dg[i] = dy[i] * u[i] * s * (1 + g[i] * (1 - s));
  }
  const shape = args.inputs.gate.shape;
  return [{ shape, values: dg }, { shape, values: du }];
}

function swigluNative(args: KernelArgs, addon: Addon) {
  const g = f32(args.backend, args.inputs.gate);
  const y = alloc(args.backend, g.length, false);
  addon.swiglu(g, f32(args.backend, args.inputs.up), y, g.length);
  return [{ shape: args.inputs.gate.shape, values: y }];
}

function swigluGradNative(args: KernelArgs, addon: Addon) {
  const [dy, g, u] = ['dy', 'gate', 'up'].map((n) => f32(args.backend, args.inputs[n]));
  const dg = alloc(args.backend, g.length, false), du = alloc(args.backend, g.length, false);
  addon.swigluGrad(dy, g, u, dg, du, g.length);
  const shape = args.inputs.gate.shape;
  return [{ shape, values: dg }, { shape, values: du }];
}

export const swigluConfigs: KernelConfig[] = kernelConfigs(Swiglu, swigluRef, swigluNative);
export const swigluGradConfigs: KernelConfig[] = kernelConfigs(SwigluGrad, swigluGradRef, swigluGradNative);
