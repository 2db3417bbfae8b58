#!/usr/bin/env bash
# Sets up (idempotently), builds the app with the shipped weights and serves it on
# http://127.0.0.1:${PORT:-8080}/ . Open it in a browser with WebGPU (or without: CPU fallback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
trunk build --release
exec node tests/e2e/serve.mjs dist "${PORT:-8080}" /
