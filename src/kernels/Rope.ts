// Rope: HF rotate-half rotary embedding (apply_rotary_pos_emb): y = x cos + rotate_half(x) sin with
// rotate_half(x) = [-x2, x1]; x [N, h, D], cos/sin [N, D] broadcast over the h heads. transpose=true applies the
// adjoint (dx1 = dy1 c1 + dy2 s2, dx2 = dy2 c2 - dy1 s1), used by the gradient. Native: kernels/Rope.cc.
import type { NativeAddon } from '../backend/addon.ts';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { Rope, type RopeAttrs, type RopeInputs } from '../kernel_names.ts';
import { alloc, f32, type KernelArgs, kernelConfigs } from './util.ts';

/** x [N, h, D] rotated with cos/sin [N, D] (back: the transposed rotation), as kernels/Rope.cc. */
export function ropeValues(
  x: Float32Array,
  c: Float32Array,
  s: Float32Array,
  [N, h, D]: number[],
  back: boolean,
): Float32Array {
  const half = D / 2;
  const y = new Float32Array(x.length);
  for (let n = 0; n < N; n++)
    for (let j = 0; j < h; j++) {
      const o = (n * h + j) * D,
        t = n * D;
      for (let i = 0; i < half; i++) {
        const x1 = x[o + i],
          x2 = x[o + i + half];
        y[o + i] = back ? x1 * c[t + i] + x2 * s[t + i + half] : x1 * c[t + i] - x2 * s[t + i];
        y[o + i + half] = back ? x2 * c[t + i + half] - x1 * s[t + i] : x2 * c[t + i + half] + x1 * s[t + i + half];
      }
    }
  return y;
}

function ropeRef(args: KernelArgs<RopeInputs, RopeAttrs>) {
  const { x, cos, sin } = args.inputs;
  const y = ropeValues(
    f32(args.backend, x),
    f32(args.backend, cos),
    f32(args.backend, sin),
    x.shape,
    args.attrs.transpose,
  );
  return [{ shape: x.shape, values: y }];
}

function ropeNative(args: KernelArgs<RopeInputs, RopeAttrs>, addon: NativeAddon) {
  const [N, h, D] = args.inputs.x.shape;
  const x = f32(args.backend, args.inputs.x);
  const y = alloc(args.backend, x.length, D % 2 !== 0); // every element written when D is even
  addon.rope(
    x,
    f32(args.backend, args.inputs.cos),
    f32(args.backend, args.inputs.sin),
    y,
    N,
    h,
    D,
    args.attrs.transpose,
  );
  return [{ shape: args.inputs.x.shape, values: y }];
}

export const ropeConfigs: KernelConfig[] = kernelConfigs(Rope, ropeRef, ropeNative);
