#!/usr/bin/env bash
# bf16 side by side (issue 14), one script so the ratios share the machine's load: lorasft --precision bf16 vs the
# PyTorch peer under torch.autocast("cpu", torch.bfloat16) at 2 threads (its best bf16 setting), per shape.
# Each JSON line carries tokens_per_s, peak_rss_bytes and matmul_peak_gflops (a 2048x1024x1024 bf16 product:
# lorasft's oneDNN call, and torch's, which is oneDNN too). Usage: bash scripts/bench/bf16_compare.sh [STEPS] [SHAPES...]
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-3}
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then shapes=("$@"); else shapes=(qwen3-0.6b qwen3-1.7b); fi
for s in "${shapes[@]}"; do
  npm run -s bench -- --shape "$s" --precision bf16 --steps "$steps" --threads 2 --json | tail -1
  /usr/bin/python3 scripts/bench/torch_step.py --shape "$s" --precision bf16 --steps "$steps" --threads 2 --json | tail -1
done
