#!/usr/bin/env bash
# Set-up on a fresh Debian machine: OpenBLAS for the native CPU backend (optional, see README) and curl (for the
# service's tests), then npm ci (better-sqlite3 builds from source when no prebuilt binary can be fetched).
set -euo pipefail
cd "$(dirname "$0")/.."
# curl: the REST walk-through test drives `lorasft serve` with it, as a user would.
MISSING=""
ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0' || MISSING="libopenblas0-pthread"
command -v curl >/dev/null || MISSING="$MISSING curl"
if [ -n "$MISSING" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $MISSING >/dev/null \
      || echo "warning: could not install$MISSING; without libopenblas0-pthread lorasft runs on the slow 'cpu' backend" >&2
  else
    echo "warning:$MISSING not installed and this user cannot install it; without libopenblas0-pthread lorasft uses the slow 'cpu' backend" >&2
  fi
fi
# onnxruntime-node (a dependency of @huggingface/transformers, unused here) would download CUDA binaries at install
# on a machine with nvcc; there is no need for them (and no internet on many training boxes).
export ONNXRUNTIME_NODE_INSTALL_CUDA=skip
npm ci --no-audit --no-fund
