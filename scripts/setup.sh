#!/usr/bin/env bash
# Set-up on a fresh Debian machine: OpenBLAS for the native CPU backend and oneDNN for its bf16 matmuls (both
# optional, see README), then npm ci.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0'; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libopenblas0-pthread >/dev/null \
      || echo "warning: could not install libopenblas0-pthread; lorasft will run on the slow 'cpu' backend" >&2
  else
    echo "warning: libopenblas0-pthread is not installed and this user cannot install it; lorasft will use the slow 'cpu' backend" >&2
  fi
fi
# oneDNN (libdnnl2): bf16 matmuls on AVX512_BF16/AMX for --precision bf16; without it bf16 weights are widened
# to fp32 per layer (slower, same results up to summation order).
if ! ldconfig -p 2>/dev/null | grep -q 'libdnnl\.so\.2'; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    export DEBIAN_FRONTEND=noninteractive
    { $SUDO apt-get install -y -qq libdnnl2 >/dev/null 2>&1 || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libdnnl2 >/dev/null; }; } \
      || echo "warning: could not install libdnnl2; bf16 matmuls will widen weights to fp32 per layer" >&2
  else
    echo "warning: libdnnl2 is not installed and this user cannot install it; bf16 matmuls will widen weights to fp32 per layer" >&2
  fi
fi
# onnxruntime-node (a dependency of @huggingface/transformers, unused here) would download CUDA binaries at install
# on a machine with nvcc; there is no need for them (and no internet on many training boxes).
export ONNXRUNTIME_NODE_INSTALL_CUDA=skip
npm ci --no-audit --no-fund
