// `npm run bench -- matmul [...]`: matmul GFLOP/s per backend (scripts/bench-matmul.ts).
// `npm run bench -- --shape smollm2-135m|qwen3-0.6b [--seq 512] --json`: one LoRA training step (scripts/bench-step.ts).
const args = process.argv.slice(2);
if (args[0] === 'matmul') {
  process.argv.splice(2, 1);
  await import('./bench-matmul.ts');
} else {
  await import('./bench-step.ts');
}
