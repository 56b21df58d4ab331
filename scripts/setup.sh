#!/usr/bin/env bash
# Set-up on a fresh Debian machine, one line per step; everything the tools print goes to .cache/setup.log,
# shown (its end) when a step fails. Steps: Debian packages (OpenBLAS for the native CPU backend and oneDNN for
# its bf16 matmuls, both optional;
# curl and Chromium for the service's and dashboard's tests), npm ci (which builds the native addon and
# better-sqlite3), and `lorasft` on PATH (the link `npm link` would make, without its reinstall).
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

# apt_step TITLE CHECK PACKAGE WITHOUT: install PACKAGE unless the command CHECK succeeds; WITHOUT says what
# a missing package costs. Never fails the set-up: every package here is optional for training. (CHECK greps
# without -q: under pipefail, grep -q quitting early makes ldconfig die of SIGPIPE and the check fail.)
APT_UPDATED=""
apt_step() {
  step "$1"
  if eval "$2" >/dev/null 2>&1; then echo "present"; return; fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "missing, and this user cannot install it; $4"; return; }
    sudo="sudo"
  fi
  if { [ -n "$APT_UPDATED" ] || DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >> "$LOG" 2>&1; } \
    && APT_UPDATED=1 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$3" >> "$LOG" 2>&1; then
    echo "installed"
  else
    echo "not installed (see $LOG); $4"
  fi
}

apt_step "OpenBLAS (libopenblas0-pthread, for the native backend)" "ldconfig -p | grep 'libopenblas\.so\.0'" \
  libopenblas0-pthread "lorasft will run on the slow 'cpu' backend"
apt_step "oneDNN (libdnnl2, bf16 matmuls on AVX512_BF16/AMX for --precision bf16)" "ldconfig -p | grep 'libdnnl\.so\.2'" \
  libdnnl2 "bf16 weights will be widened to fp32 per layer"
apt_step "curl (the REST walk-through test drives lorasft serve with it)" "command -v curl" curl \
  "the service's walk-through test will fail"
apt_step "Chromium (Debian's, for the dashboard's browser test; no browser download)" "command -v chromium" chromium \
  "the dashboard's browser test will fail"

step "npm ci (dependencies, the native addon, better-sqlite3)"
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
