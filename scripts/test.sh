#!/usr/bin/env bash
# Sets up (idempotently) and runs every test: the format and lint gate, unit and parity tests,
# the CLI end to end, the release wasm build, and the headless-Chromium end-to-end suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

echo "== format and lint gate (rustfmt.toml; clippy on the native and the wasm32 code)"
cargo fmt --check
cargo clippy --release --locked --all-targets -- -D warnings
# The browser build's code: the library's wasm32 modules (app/) and the web entry point.
cargo clippy --release --locked --target wasm32-unknown-unknown --lib --bin pneumoscope-web -- -D warnings
echo "== native build (release: one profile for CLI, tests and benches)"
cargo build --release --locked --bins
echo "== cargo test"
cargo test --release --locked
echo "== benchmark scripts start (smoke; the suite itself is scripts/bench.sh, minutes, not run here)"
bash -n scripts/bench.sh
node --check benches/browser/bench.mjs
node --check benches/browser/ort-bench.mjs
python3 -c 'import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]' benches/*.py
cargo bench --locked --bench inference -- --sizes 64 --batches 1 --runs 1 --matmul 0 | python3 benches/report.py /dev/stdin
echo "== wasm build (trunk)"
trunk build --release
echo "== browser end-to-end (headless Chromium)"
node tests/e2e/run.mjs
