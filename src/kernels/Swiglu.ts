// Swiglu / SwigluGrad: y = silu(gate) * up (HF LlamaMLP act_fn(gate_proj(x)) * up_proj(x)), elementwise.
// dgate = dy up s (1 + gate (1 - s)), dup = dy gate s, s = sigmoid(gate). Native: kernels/Swiglu.cc.
import type { NativeAddon } from '../backend/addon.ts';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { Swiglu, SwigluGrad, type SwigluAttrs, type SwigluGradInputs, type SwigluInputs } from '../kernel_names.ts';
import { alloc, f32, type KernelArgs, kernelConfigs } from './util.ts';

// The references use Math.exp with or without fastExp (the native vector exp agrees to ~2e-7 relative).
function swigluRef(args: KernelArgs<SwigluInputs, SwigluAttrs>) {
  const g = f32(args.backend, args.inputs.gate),
    u = f32(args.backend, args.inputs.up);
  const y = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) y[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
  return [{ shape: args.inputs.gate.shape, values: y }];
}

function swigluGradRef(args: KernelArgs<SwigluGradInputs, SwigluAttrs>) {
  const [dy, g, u] = (['dy', 'gate', 'up'] as const).map((n) => f32(args.backend, args.inputs[n]));
  const dg = new Float32Array(g.length),
    du = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const s = 1 / (1 + Math.exp(-g[i]));
    du[i] = dy[i] * g[i] * s;
    dg[i] = dy[i] * u[i] * s * (1 + g[i] * (1 - s));
  }
  const shape = args.inputs.gate.shape;
  return [
    { shape, values: dg },
    { shape, values: du },
  ];
}

function swigluNative(args: KernelArgs<SwigluInputs, SwigluAttrs>, addon: NativeAddon) {
  const g = f32(args.backend, args.inputs.gate);
  const y = alloc(args.backend, g.length, false);
  addon.swiglu(g, f32(args.backend, args.inputs.up), y, g.length, args.attrs.fastExp ?? false);
  return [{ shape: args.inputs.gate.shape, values: y }];
}

function swigluGradNative(args: KernelArgs<SwigluGradInputs, SwigluAttrs>, addon: NativeAddon) {
  const [dy, g, u] = (['dy', 'gate', 'up'] as const).map((n) => f32(args.backend, args.inputs[n]));
  const dg = alloc(args.backend, g.length, false),
    du = alloc(args.backend, g.length, false);
  addon.swigluGrad(dy, g, u, dg, du, g.length, args.attrs.fastExp ?? false);
  const shape = args.inputs.gate.shape;
  return [
    { shape, values: dg },
    { shape, values: du },
  ];
}

export const swigluConfigs: KernelConfig[] = kernelConfigs(Swiglu, swigluRef, swigluNative);
export const swigluGradConfigs: KernelConfig[] = kernelConfigs(SwigluGrad, swigluGradRef, swigluGradNative);
