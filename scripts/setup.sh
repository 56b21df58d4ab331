#!/usr/bin/env bash
# Set-up on a fresh Debian machine: OpenBLAS for the native CPU backend (optional, see README), then npm ci.
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
# onnxruntime-node (a dependency of @huggingface/transformers, unused here) would download CUDA binaries at install
# on a machine with nvcc; there is no need for them (and no internet on many training boxes).
export ONNXRUNTIME_NODE_INSTALL_CUDA=skip
npm ci --no-audit --no-fund
# Debian's Chromium for the dashboard's browser test (driven by playwright-core; no browser download at install).
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    export DEBIAN_FRONTEND=noninteractive
    { $SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null; }; } \
      || echo "warning: could not install chromium; the dashboard's browser test will fail" >&2
  else
    echo "warning: chromium is not installed and this user cannot install it; the dashboard's browser test will fail" >&2
  fi
fi
