#!/usr/bin/env bash
# bf16 side by side (issue 14), one script so the ratios share the machine's load: lorasft --precision bf16 vs the
# PyTorch peer under torch.autocast("cpu", torch.bfloat16) at 2 threads (its best bf16 setting), per shape.
# Each JSON line carries tokens_per_s, peak_rss_bytes and matmul_peak_gflops (a 2048x1024x1024 bf16 product:
# lorasft's oneDNN call, and torch's, which is oneDNN too); lorasft's also matmul_share (each step's model GFLOP/s
# over a peak taken right before it). ROUNDS=K (default 1) alternates the two K times per shape, so a host whose
# speed drifts (a shared one: the same product ran at 400-1200 GFLOP/s within minutes) weighs on both alike; the
# last line per shape is the ratio of the medians.
# Usage: [ROUNDS=K] bash scripts/bench/bf16_compare.sh [STEPS] [SHAPES...]
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-3}
rounds=${ROUNDS:-1}
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then shapes=("$@"); else shapes=(qwen3-0.6b qwen3-1.7b); fi
for s in "${shapes[@]}"; do
  lines=()
  for ((k = 0; k < rounds; k++)); do
    lines+=("$(npm run -s bench -- --shape "$s" --precision bf16 --steps "$steps" --threads 2 --json | tail -1)")
    echo "${lines[-1]}"
    lines+=("$(/usr/bin/python3 scripts/bench/torch_step.py --shape "$s" --precision bf16 --steps "$steps" --threads 2 --json | tail -1)")
    echo "${lines[-1]}"
  done
  printf '%s\n' "${lines[@]}" | node -e '
    const rows = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
    const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
    const ours = rows.filter((r) => r.backend).map((r) => r.tokens_per_s), theirs = rows.filter((r) => r.impl).map((r) => r.tokens_per_s);
    const shares = rows.filter((r) => r.matmul_share !== undefined).map((r) => r.matmul_share);
    console.log(JSON.stringify({ shape: rows[0].shape, rounds: ours.length, lorasft_tokens_per_s: med(ours), torch_tokens_per_s: med(theirs),
      ratio_of_medians: Number((med(ours) / med(theirs)).toFixed(2)), ratios: ours.map((o, i) => Number((o / theirs[i]).toFixed(2))),
      matmul_shares: shares, product_s: rows.filter((r) => r.product_s !== undefined).map((r) => r.product_s) }));'
done
