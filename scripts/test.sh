#!/usr/bin/env bash
# Sets up (idempotently) and runs every test: unit and parity tests, the CLI end to end,
# the release wasm build, and the headless-Chromium end-to-end suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

echo "== native build (release: one profile for CLI, tests and benches)"
cargo build --release --locked --bins
echo "== cargo test"
cargo test --release --locked
echo "== wasm build (trunk)"
trunk build --release
echo "== browser end-to-end (headless Chromium)"
node tests/e2e/run.mjs
