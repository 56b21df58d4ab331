// LoraLinearGroup / LoraLinearGroupGrad: LoraLinear for n linears that read one input x (q/k/v, gate/up), without
// dropout. Reference: each member through LoraLinear's reference, dx summed in member order. Native with bf16
// weights: kernels/LoraLinearBf16.cc's group passes (x read and rounded to bf16 once, one summed dx, no tape Adds);
// otherwise each member through LoraLinear's native kernel.
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../backend/addon.ts';
import {
  LoraLinearGroup,
  LoraLinearGroupGrad,
  type LoraLinearAttrs,
  type LoraLinearGroupAttrs,
  type LoraLinearGroupGradInputs,
  type LoraLinearGroupInputs,
} from '../kernel_names.ts';
import { loraLinearGradNative, loraLinearGradRef, loraLinearNative, loraLinearRef } from './LoraLinear.ts';
import { isPackedBf16, packedValues, weightShape } from './MatMulBf16.ts';
import { alloc, f32, type KernelArgs, kernelConfigs } from './util.ts';

type Outputs = Array<{ shape: number[]; values: Float32Array }>;
type Single = (args: KernelArgs<never, LoraLinearAttrs>, addon: NativeAddon) => Outputs;

type Inputs = Record<string, TensorInfo | undefined>;

function input(inputs: Inputs, name: string): TensorInfo {
  const t = inputs[name];
  if (!t) throw new Error(`LoraLinearGroup: input ${name} missing`);
  return t;
}

/** Member i's W, A, B (and bias) in LoraLinearGroup's inputs (an array: x, then W, A, B per member, then biases). */
function member(args: KernelArgs<LoraLinearGroupInputs, LoraLinearGroupAttrs>, i: number) {
  const { inputs, attrs } = args;
  const b = attrs.biased.indexOf(i);
  return {
    W: inputs[1 + 3 * i],
    A: inputs[2 + 3 * i],
    B: inputs[3 + 3 * i],
    bias: b < 0 ? undefined : inputs[1 + 3 * attrs.members + b],
  };
}

/** Member i's W, A, B in LoraLinearGroupGrad's named inputs (Wi, Ai, Bi). */
function gradMember(inputs: Inputs, i: number) {
  return { W: input(inputs, `W${i}`), A: input(inputs, `A${i}`), B: input(inputs, `B${i}`) };
}

function dims(args: KernelArgs<LoraLinearGroupInputs, LoraLinearGroupAttrs>) {
  const x = args.inputs[0];
  return { n: args.attrs.members, N: x.shape[0], inp: x.shape[1], r: member(args, 0).A.shape[0] };
}

/** u_i [N, r] -> columns [i r, (i+1) r) of U [N, n r] (and back). */
function interleave(us: Float32Array[], N: number, r: number): Float32Array {
  const n = us.length,
    U = new Float32Array(N * n * r);
  us.forEach((u, i) => {
    for (let t = 0; t < N; t++) U.set(u.subarray(t * r, (t + 1) * r), (t * n + i) * r);
  });
  return U;
}
function column(U: Float32Array, i: number, n: number, N: number, r: number): Float32Array {
  const u = new Float32Array(N * r);
  for (let t = 0; t < N; t++) u.set(U.subarray((t * n + i) * r, (t * n + i + 1) * r), t * r);
  return u;
}

/** The group as n LoraLinear calls (reference, or native without bf16 weights): [U, y_0 .. y_{n-1}]. */
function byMembers(args: KernelArgs<LoraLinearGroupInputs, LoraLinearGroupAttrs>, single: Single, addon: NativeAddon) {
  const { n, N, r } = dims(args);
  const outs = Array.from({ length: n }, (_, i) => {
    const inputs = { xl: args.inputs[0], ...member(args, i) };
    return single({ ...args, inputs, attrs: { scale: args.attrs.scale, sharedX: true } } as never, addon);
  });
  const u = outs.map(([, uo]) => uo.values);
  return [{ shape: [N, n * r], values: interleave(u, N, r) }, ...outs.map(([y]) => y)];
}

function gradByMembers(
  args: KernelArgs<LoraLinearGroupGradInputs, LoraLinearGroupAttrs>,
  single: Single,
  addon: NativeAddon,
): Outputs {
  const n = args.attrs.members,
    [N, inp] = args.inputs.x.shape,
    r = gradMember(args.inputs, 0).A.shape[0];
  const U = f32(args.backend, args.inputs.U),
    dx = new Float32Array(N * inp),
    dAB: Outputs = [];
  for (let i = 0; i < n; i++) {
    const u = args.backend.makeTensorInfo([N, r], 'float32', column(U, i, n, N, r));
    const { W, A, B } = gradMember(args.inputs, i);
    const inputs = { dy: input(args.inputs, `dy${i}`), xl: args.inputs.x, W, A, B, u };
    const [d, dA, dB] = single({ ...args, inputs, attrs: { scale: args.attrs.scale, sharedX: true } } as never, addon);
    args.backend.disposeData(u.dataId);
    for (let j = 0; j < dx.length; j++) dx[j] += d.values[j];
    dAB.push(dA, dB);
  }
  return [{ shape: [N, inp], values: dx }, ...dAB];
}

const groupRef = (args: KernelArgs<LoraLinearGroupInputs, LoraLinearGroupAttrs>) =>
  byMembers(args, loraLinearRef as unknown as Single, null as never);
const groupGradRef = (args: KernelArgs<LoraLinearGroupGradInputs, LoraLinearGroupAttrs>) =>
  gradByMembers(args, loraLinearGradRef as unknown as Single, null as never);

const allBf16 = (Ws: TensorInfo[]) => Ws.every(isPackedBf16);

function groupNative(args: KernelArgs<LoraLinearGroupInputs, LoraLinearGroupAttrs>, addon: NativeAddon): Outputs {
  const { n, N, inp, r } = dims(args);
  const ms = Array.from({ length: n }, (_, i) => member(args, i));
  if (!allBf16(ms.map((m) => m.W))) return byMembers(args, loraLinearNative as unknown as Single, addon);
  const members = ms.map((m) => {
    const out = weightShape(m.W)[0];
    // Every y is first written whole (the LoRA term, then oneDNN adds x W^T): pooled buffers need no zero fill.
    const [A, B] = [f32(args.backend, m.A), f32(args.backend, m.B)];
    const bias = m.bias ? f32(args.backend, m.bias) : null;
    return { out, W: packedValues(args.backend, m.W), A, B, bias, y: alloc(args.backend, N * out, false) };
  });
  const U = alloc(args.backend, N * n * r, false);
  addon.loraLinearGroupBf16(f32(args.backend, args.inputs[0]), members, U, N, inp, r, args.attrs.scale);
  return [{ shape: [N, n * r], values: U }, ...members.map((m) => ({ shape: [N, m.out], values: m.y }))];
}

function groupGradNative(
  args: KernelArgs<LoraLinearGroupGradInputs, LoraLinearGroupAttrs>,
  addon: NativeAddon,
): Outputs {
  const n = args.attrs.members,
    [N, inp] = args.inputs.x.shape,
    r = gradMember(args.inputs, 0).A.shape[0];
  const ms = Array.from({ length: n }, (_, i) => gradMember(args.inputs, i));
  if (!allBf16(ms.map((m) => m.W))) return gradByMembers(args, loraLinearGradNative as unknown as Single, addon);
  const members = ms.map((m, i) => {
    const out = weightShape(m.W)[0];
    return {
      out,
      W: packedValues(args.backend, m.W),
      A: f32(args.backend, m.A),
      B: f32(args.backend, m.B),
      dy: f32(args.backend, input(args.inputs, `dy${i}`)),
      dA: alloc(args.backend, r * inp, false),
      dB: alloc(args.backend, out * r, false),
    };
  });
  const dx = alloc(args.backend, N * inp, false);
  const x = f32(args.backend, args.inputs.x);
  addon.loraLinearGroupGradBf16(x, members, f32(args.backend, args.inputs.U), dx, N, inp, r, args.attrs.scale);
  const dAB = members.flatMap((m) => [
    { shape: [r, inp], values: m.dA },
    { shape: [m.out, r], values: m.dB },
  ]);
  return [{ shape: [N, inp], values: dx }, ...dAB];
}

export const loraLinearGroupConfigs: KernelConfig[] = kernelConfigs(LoraLinearGroup, groupRef, groupNative);
export const loraLinearGroupGradConfigs: KernelConfig[] = kernelConfigs(
  LoraLinearGroupGrad,
  groupGradRef,
  groupGradNative,
);
