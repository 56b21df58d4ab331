// GeluTanhMul / GeluTanhMulGrad: y = gelu_tanh(gate) * up (HF Gemma3MLP, act gelu_pytorch_tanh), elementwise.
// gelu_tanh(g) = 0.5 g (1 + t), t = tanh(c (g + a g^3)); dgate = dy up (0.5 (1 + t) + 0.5 g (1 - t^2) c (1 + 3 a g^2)),
// dup = dy gelu_tanh(g). Native: kernels/GeluTanhMul.cc.
import type { NativeAddon } from '../backend/addon.ts';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { GeluTanhMul, GeluTanhMulGrad, type GeluTanhMulGradInputs, type GeluTanhMulInputs } from '../kernel_names.ts';
import { alloc, f32, type KernelArgs, kernelConfigs, type NoAttrs } from './util.ts';

const C = Math.sqrt(2 / Math.PI),
  A = 0.044715;

function geluTanhMulRef(args: KernelArgs<GeluTanhMulInputs, NoAttrs>) {
  const g = f32(args.backend, args.inputs.gate),
    u = f32(args.backend, args.inputs.up);
  const y = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) y[i] = 0.5 * g[i] * (1 + Math.tanh(C * (g[i] + A * g[i] ** 3))) * u[i];
  return [{ shape: args.inputs.gate.shape, values: y }];
}

function geluTanhMulGradRef(args: KernelArgs<GeluTanhMulGradInputs, NoAttrs>) {
  const [dy, g, u] = (['dy', 'gate', 'up'] as const).map((n) => f32(args.backend, args.inputs[n]));
  const dg = new Float32Array(g.length),
    du = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const x = g[i],
      t = Math.tanh(C * (x + A * x ** 3));
    du[i] = dy[i] * 0.5 * x * (1 + t);
    dg[i] = dy[i] * u[i] * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * A * x * x));
  }
  const shape = args.inputs.gate.shape;
  return [
    { shape, values: dg },
    { shape, values: du },
  ];
}

function geluTanhMulNative(args: KernelArgs<GeluTanhMulInputs, NoAttrs>, addon: NativeAddon) {
  const g = f32(args.backend, args.inputs.gate);
  const y = alloc(args.backend, g.length, false);
  addon.geluTanhMul(g, f32(args.backend, args.inputs.up), y, g.length);
  return [{ shape: args.inputs.gate.shape, values: y }];
}

function geluTanhMulGradNative(args: KernelArgs<GeluTanhMulGradInputs, NoAttrs>, addon: NativeAddon) {
  const [dy, g, u] = (['dy', 'gate', 'up'] as const).map((n) => f32(args.backend, args.inputs[n]));
  const dg = alloc(args.backend, g.length, false),
    du = alloc(args.backend, g.length, false);
  addon.geluTanhMulGrad(dy, g, u, dg, du, g.length);
  const shape = args.inputs.gate.shape;
  return [
    { shape, values: dg },
    { shape, values: du },
  ];
}

export const geluTanhMulConfigs: KernelConfig[] = kernelConfigs(GeluTanhMul, geluTanhMulRef, geluTanhMulNative);
export const geluTanhMulGradConfigs: KernelConfig[] = kernelConfigs(
  GeluTanhMulGrad,
  geluTanhMulGradRef,
  geluTanhMulGradNative,
);
