#!/usr/bin/env bash
# Installs everything Pneumoscope needs on a fresh Debian machine. Idempotent: each step is
# skipped when the right version is already there. Everything comes from package registries
# (Debian, crates.io, npm); nothing downloads a prebuilt browser or binary from elsewhere.
#   scripts/setup.sh          build + serve tools
#   scripts/setup.sh --test   also the test tools (Chromium, lavapipe Vulkan, Playwright, MLflow)
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130
want_test=false
[[ "${1:-}" == "--test" ]] && want_test=true

sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

apt_packages=(pkg-config)
$want_test && apt_packages+=(chromium mesa-vulkan-drivers libvulkan1 python3-venv)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "setup: apt-get install ${missing[*]}"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

if [[ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]]; then
  echo "setup: cargo install trunk $TRUNK_VERSION (about 10 minutes, once)"
  cargo install --locked --quiet trunk --version "$TRUNK_VERSION"
fi
if [[ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
  echo "setup: cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Not --locked: its lockfile pins a crate version crates.io no longer serves.
  cargo install --quiet --force wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# npm: wasm-opt (binaryen 132; Debian's 108 emits wasm Chromium rejects) and playwright-core.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ "$(cat node_modules/.installed-lock-sha256 2>/dev/null)" != "$lock_sum" ]]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.installed-lock-sha256
fi

# PyPI: the MLflow tracking server for tests/mlflow.rs, in its own virtual environment (its
# dependencies must not clash with anything else installed).
if $want_test; then
  req=tests/mlflow/requirements.txt
  req_sum=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ "$(cat .tools/mlflow/.installed-sha256 2>/dev/null)" != "$req_sum" ]]; then
    echo "setup: pip install -r $req (into .tools/mlflow)"
    rm -rf .tools/mlflow
    python3 -m venv .tools/mlflow
    .tools/mlflow/bin/pip install --quiet --disable-pip-version-check -r "$req"
    echo "$req_sum" > .tools/mlflow/.installed-sha256
  fi
fi
