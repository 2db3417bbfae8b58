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
