// lorasft's fused ops (kernels registered by initBackend for 'cpu' and 'native').
export { attention } from './attention.ts';
export { crossEntropyWeighted, ceChunkRows } from './cross_entropy.ts';
export { rmsNorm } from './rms_norm.ts';
export { swiglu } from './swiglu.ts';
export { geluTanhMul } from './gelu_tanh_mul.ts';
export { rope } from './rope.ts';
export { loraLinear } from './lora_linear.ts';
export { loraLinearGroup } from './lora_linear_group.ts';
export { bf16Tensor, isBf16, matMulBf16 } from './matmul_bf16.ts';
