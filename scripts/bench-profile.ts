// Time share per tfjs kernel over one call of `run`: every kernel of the backend is wrapped with a timer that
// counts exclusive time (a kernel calling another, e.g. _FusedMatMul -> Add, is not counted twice). With
// `productSeconds` (the bf16 path's clock of oneDNN's linear and lm_head products), each kernel's line also says how
// much of its time went to those products; the rest of it is its own passes.
import * as tf from '@tensorflow/tfjs-core';

export function profileKernels(
  backendName: string,
  run: () => void,
  productSeconds?: () => number | undefined,
): Record<string, number> {
  const total = new Map<string, number>(),
    inProducts = new Map<string, number>();
  const stack: number[] = []; // child time accumulated per open kernel
  const originals = tf.getKernelsForBackend(backendName);
  for (const k of originals) {
    const f = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, backendName);
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        const t0 = performance.now(),
          p0 = productSeconds?.();
        stack.push(0);
        try {
          return f(args);
        } finally {
          const dt = performance.now() - t0,
            child = stack.pop()!;
          total.set(k.kernelName, (total.get(k.kernelName) ?? 0) + dt - child);
          if (p0 !== undefined) {
            const p = (productSeconds!()! - p0) * 1000; // kernels that run products call no other kernel
            inProducts.set(k.kernelName, (inProducts.get(k.kernelName) ?? 0) + p);
          }
          if (stack.length) stack[stack.length - 1] += dt;
        }
      },
    });
  }
  const t0 = performance.now();
  try {
    run();
  } finally {
    for (const k of originals) {
      tf.unregisterKernel(k.kernelName, backendName);
      tf.registerKernel(k);
    }
  }
  const wall = performance.now() - t0;
  const inKernels = [...total.values()].reduce((a, b) => a + b, 0);
  const share: Record<string, number> = {};
  for (const [k, v] of [...total].sort((a, b) => b[1] - a[1]))
    if (v / wall >= 0.005) share[k] = Number((v / wall).toFixed(3));
  share['(outside kernels)'] = Number(((wall - inKernels) / wall).toFixed(3));
  console.log(`kernel time share over one step (${(wall / 1000).toFixed(2)} s):`);
  for (const [k, v] of Object.entries(share)) {
    const p = inProducts.get(k) ?? 0;
    console.log(
      `  ${k.padEnd(24)} ${(v * 100).toFixed(1).padStart(5)}%${p > 0 ? `   products ${((p / wall) * 100).toFixed(1)}%` : ''}`,
    );
  }
  return share;
}
