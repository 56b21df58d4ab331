// `npm run bench -- matmul [...]`: matmul GFLOP/s per backend (scripts/bench-matmul.ts).
// `npm run bench -- ce [...]`: fused cross-entropy at Qwen3-0.6B's lm_head shape (scripts/bench-ce.ts).
// `npm run bench -- attention [...]`: fused attention with / without a sliding window (scripts/bench-attention.ts).
// `npm run bench -- serve [--pollers 100] [--seconds 15]`: GET-job latency of lorasft serve (scripts/bench-serve.ts).
// `npm run bench -- --shape smollm2-135m|qwen3-0.6b [--seq 512] --json`: one LoRA training step (scripts/bench-step.ts).
// `npm run bench -- infer [...]`: inference tokens/s of a deployment, continuous batching vs one by one (scripts/bench-infer.ts).

const args = process.argv.slice(2);
if (args[0] === 'matmul') {
  process.argv.splice(2, 1);
  await import('./bench-matmul.ts');
} else if (args[0] === 'serve') {
  process.argv.splice(2, 1);
  await import('./bench-serve.ts');
} else if (args[0] === 'ce') {
  process.argv.splice(2, 1);
  await import('./bench-ce.ts');
} else if (args[0] === 'attention') {
  process.argv.splice(2, 1);
  await import('./bench-attention.ts');
} else if (args[0] === 'infer') {
  process.argv.splice(2, 1);
  await import('./bench-infer.ts');
} else {
  await import('./bench-step.ts');
}
