#!/usr/bin/env bash
# Set-up on a fresh Debian machine, one line per step; everything the tools print goes to .cache/setup.log,
# shown (its end) when a step fails. Steps: OpenBLAS for the native CPU backend (optional, see README), npm ci
# (which builds the native addon), and `lorasft` on PATH (the link `npm link` would make, without its reinstall).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
LOG="$PWD/.cache/setup.log"
: > "$LOG"
step() { printf '%s ... ' "$1"; echo "=== $1" >> "$LOG"; }
fail() {
  echo "failed"
  echo "error: $1 (full log: $LOG; its last lines:)" >&2
  tail -n 25 "$LOG" >&2
  exit 1
}

step "OpenBLAS (libopenblas0-pthread, for the native backend)"
if ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0'; then
  echo "present"
else
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    if DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq >> "$LOG" 2>&1 \
      && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas0-pthread >> "$LOG" 2>&1; then
      echo "installed"
    else
      echo "not installed (see $LOG); lorasft will run on the slow 'cpu' backend"
    fi
  else
    echo "missing, and this user cannot install it; lorasft will run on the slow 'cpu' backend"
  fi
fi

step "npm ci (dependencies and the native addon)"
npm ci --no-audit --no-fund >> "$LOG" 2>&1 || fail "npm ci failed"
if [ -f build/Release/lorasft_native.node ]; then echo "done, native addon built"
else echo "done, native addon NOT built (see $LOG); lorasft will run on the slow 'cpu' backend"; fi

step "lorasft on PATH"
BIN_DIR="$(npm prefix -g 2>>"$LOG")/bin"
if [ -w "$BIN_DIR" ] && ln -sfn "$PWD/bin/lorasft.js" "$BIN_DIR/lorasft" 2>> "$LOG"; then
  chmod +x bin/lorasft.js
  echo "linked $BIN_DIR/lorasft -> $PWD/bin/lorasft.js ($(node bin/lorasft.js --version))"
else
  echo "not linked ($BIN_DIR is not writable); run it as: node $PWD/bin/lorasft.js"
fi

step "Chromium (Debian's, for the dashboard's browser test; playwright-core drives it, no browser download)"
if command -v chromium >/dev/null 2>&1; then
  echo "present"
else
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    if { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >> "$LOG" 2>&1; } \
      || { DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq >> "$LOG" 2>&1 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >> "$LOG" 2>&1; }; then
      echo "installed"
    else
      echo "not installed (see $LOG); the dashboard's browser test will fail"
    fi
  else
    echo "missing, and this user cannot install it; the dashboard's browser test will fail"
  fi
fi
