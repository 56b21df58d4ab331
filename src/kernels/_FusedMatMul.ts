// Native _FusedMatMul for the 'native' backend: sgemm + per-column bias + activation in one pass
// (kernels/BatchMatMul.cc); other bias shapes and prelu go through the native Add / Prelu kernels.
import { getKernel } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { ACTIVATIONS, f32, matMulImpl } from './BatchMatMul.ts';

interface FusedInputs {
  a: TensorInfo;
  b: TensorInfo;
  bias?: TensorInfo;
  preluActivationWeights?: TensorInfo;
}

function run(
  name: string,
  inputs: Record<string, TensorInfo>,
  backend: MathBackendCPU,
  attrs?: NamedAttrMap,
): TensorInfo {
  return getKernel(name, 'native')!.kernelFunc({ inputs, backend, attrs } as never) as TensorInfo;
}

function fusedMatMul(args: { inputs: FusedInputs; backend: MathBackendCPU; attrs: NamedAttrMap }): TensorInfo {
  const {
    inputs: { a, b, bias, preluActivationWeights },
    backend,
    attrs,
  } = args;
  const { transposeA, transposeB, activation, leakyreluAlpha } = attrs as {
    transposeA: boolean;
    transposeB: boolean;
    activation?: string;
    leakyreluAlpha?: number;
  };
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || (bias && bias.dtype !== 'float32')) {
    return getKernel('_FusedMatMul', 'cpu')!.kernelFunc(args as never) as TensorInfo;
  }
  const N = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
  const act = ACTIVATIONS[activation ?? 'linear'];
  // Bias fused when it is one value or one per output column ([N], [1, N], ...); else added after.
  const biasSize = bias ? bias.shape.reduce((p, d) => p * d, 1) : 0;
  const fuseBias = !bias || biasSize === 1 || (biasSize === N && bias.shape[bias.shape.length - 1] === N);
  const fuseAct = fuseBias && act !== undefined;
  let out = matMulImpl(
    backend,
    a,
    b,
    transposeA,
    transposeB,
    fuseBias && bias ? f32(backend, bias) : undefined,
    fuseAct ? act : 0,
    leakyreluAlpha ?? 0.2,
  );
  if (!fuseBias) {
    const sum = run('Add', { a: out, b: bias! }, backend);
    backend.disposeIntermediateTensorInfo(out);
    out = sum;
  }
  if (!fuseAct && activation && activation !== 'linear') {
    const y =
      activation === 'prelu'
        ? run('Prelu', { x: out, alpha: preluActivationWeights! }, backend)
        : activation === 'leakyrelu'
          ? run('LeakyRelu', { x: out }, backend, { alpha: leakyreluAlpha ?? 0.2 })
          : run(
              { relu: 'Relu', relu6: 'Relu6', sigmoid: 'Sigmoid', elu: 'Elu' }[activation] ?? activation,
              { x: out },
              backend,
            );
    backend.disposeIntermediateTensorInfo(out);
    out = y;
  }
  return out;
}

export const fusedMatMulConfig: KernelConfig = {
  kernelName: '_FusedMatMul',
  backendName: 'native',
  kernelFunc: fusedMatMul as unknown as KernelFunc,
};
