#!/usr/bin/env bash
# The whole benchmark suite, one table at the end (docs/benchmarks.md). Slow (about 8–10
# minutes on 2 cores once built); not part of scripts/test.sh.
#
#   bash scripts/bench.sh              # everything
#   bash scripts/bench.sh native       # native CPU, memory and machine floor only
#   bash scripts/bench.sh browser      # browser only (needs dist/ from `trunk build --release`)
#   bash scripts/bench.sh --smoke      # seconds: checks that every piece starts (1 run each)
#
# Needs: the release build (cargo), Python 3 for the PyTorch/ONNX peers in a virtual environment
# ($BENCH_VENV, default .tools/bench, created from benches/requirements.txt if missing: torch
# from PyPI is large), and for the browser part what `scripts/setup.sh --test` installs
# (Chromium, playwright-core) plus onnxruntime-web (benches/browser/package-lock.json).
# Results: target/bench/results.jsonl (raw), target/bench/table.md (the table).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=target/bench
RESULTS=$OUT/results.jsonl
VENV=${BENCH_VENV:-.tools/bench}
THREADS=${BENCH_THREADS:-2}
RUNS=${BENCH_RUNS:-5}
# The test X-rays: $XRAY_DIR, else $PNEUMOSCOPE_DATA/test (the data set, as in the tests; default
# ../shared/data/chest_xray, relative to the repository root).
XRAY_DIR=${XRAY_DIR:-${PNEUMOSCOPE_DATA:-../shared/data/chest_xray}/test}
XRAY=$XRAY_DIR/PNEUMONIA/person1_virus_6.jpeg
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
# PyTorch's OpenMP threads spin at barriers by default; on a machine shared with other work that
# spinning loses whole time slices (measured here: 2-thread DenseNet121 224² went from 0.17 s to
# 0.7–0.9 s per image beside a niced training job). PASSIVE is PyTorch's best setting on a shared
# machine; set OMP_WAIT_POLICY=ACTIVE to measure the default on an idle one.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"

parts=native,browser
smoke=false
for a in "$@"; do
  case $a in
    --smoke) smoke=true ;;
    native|browser) parts=$a ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done
want() { [[ ",$parts," == *",$1,"* ]]; }
if $smoke; then RUNS=1; fi
mkdir -p "$OUT"
# BENCH_APPEND=1 adds to the previous results (e.g. `native` then `browser` into one table).
[[ -n ${BENCH_APPEND:-} ]] || : > "$RESULTS"
record() { { grep '^{' || true; } | tee -a "$RESULTS"; }

# --- tools -------------------------------------------------------------------------------------
if [[ ! -x $VENV/bin/python ]] || [[ "$(cat "$VENV/.installed-sha256" 2>/dev/null)" != "$(sha256sum benches/requirements.txt | cut -d' ' -f1)" ]]; then
  echo "bench: pip install -r benches/requirements.txt into $VENV (torch is large; once)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r benches/requirements.txt
  sha256sum benches/requirements.txt | cut -d' ' -f1 > "$VENV/.installed-sha256"
fi
PY=$VENV/bin/python
echo "== build (release)"
cargo build --release --locked --bins 2>&1 | tail -1
cargo bench --locked --bench inference --no-run 2>&1 | tail -1

OTHERS="$(ps -eo pcpu=,ni=,comm= --sort=-pcpu | awk '$1 > 10 {printf "%s%s (nice %s, %s%% CPU)", sep, $3, $2, $1; sep="; "}')" \
LOAD="$(cut -d' ' -f1-3 /proc/loadavg)" THREADS=$THREADS RUNS=$RUNS "$PY" - <<'EOF' | record >/dev/null
import json, os, platform, time
from importlib.metadata import version as v
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
print(json.dumps({"kind": "meta", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "machine": f"{cpu}, {os.cpu_count()} cores, {mem} GiB", "load": os.environ["LOAD"],
                  "threads": int(os.environ["THREADS"]), "runs": int(os.environ["RUNS"]), "others": os.environ["OTHERS"],
                  "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
                  "peers": ", ".join(f"{p} {v(p)}" for p in ("torch", "torchvision", "grad-cam", "onnxruntime"))}))
EOF

echo "== same weights everywhere: safetensors → torchvision state_dict + ONNX, parity with the CLI"
"$PY" benches/convert_weights.py --out "$OUT" --xray "$XRAY" | record

if want native; then
  echo "== machine floor (matmul), before"
  "$PY" benches/torch_infer.py --only-matmul --matmul 2048 --threads "$THREADS" --runs "$RUNS" | sed 's/}$/, "when": "before"}/' | record
  peer="$PY benches/torch_infer.py --serve --weights $OUT/densenet121.pth --threads $THREADS"
  for size in 224 128; do
    batches=1,16
    $smoke && batches=1
    echo "== native inference ${size}²: ours (burn flex) and PyTorch interleaved, same weights, $THREADS threads each"
    extra=()
    [[ $size == 128 ]] && extra=(--pipeline --xray "$XRAY")
    cargo bench --locked --bench inference -- --sizes "$size" --batches "$batches" --runs "$RUNS" --peer "$peer" "${extra[@]}" | record
  done

  echo "== CLI peak memory (/usr/bin/time -v) and wall time: 1, 100 and 1000 files"
  mapfile -t files < <(find "$XRAY_DIR" -name '*.jpeg' | sort)
  counts="1 100 1000"
  $smoke && counts=1
  for n in $counts; do
    list=()
    for ((i = 0; i < n; i++)); do list+=("${files[i % ${#files[@]}]}"); done
    start=$(date +%s.%N)
    /usr/bin/time -v -o "$OUT/time-$n.txt" target/release/pneumoscope predict "${list[@]}" > "$OUT/predict-$n.jsonl"
    wall=$(awk "BEGIN{print $(date +%s.%N) - $start}")
    rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$OUT/time-$n.txt")
    ok=$(grep -c '"probability"' "$OUT/predict-$n.jsonl" || true)
    echo "{\"kind\":\"cli_rss\",\"images\":$n,\"max_rss_kb\":$rss,\"predictions\":$ok}" | record
    echo "{\"kind\":\"cli_throughput\",\"images\":$n,\"wall_s\":$wall}" | record
  done

  echo "== machine floor (matmul), after"
  "$PY" benches/torch_infer.py --only-matmul --matmul 2048 --threads "$THREADS" --runs "$RUNS" | sed 's/}$/, "when": "after"}/' | record
fi

if want browser; then
  echo "== browser (headless Chromium): ours vs onnxruntime-web"
  if [[ ! -f dist/index.html ]]; then
    echo "bench: dist/ missing (trunk build --release): browser part skipped"
  else
    lock_sum=$(sha256sum benches/browser/package-lock.json | cut -d' ' -f1)
    if [[ "$(cat benches/browser/node_modules/.installed-lock-sha256 2>/dev/null)" != "$lock_sum" ]]; then
      (cd benches/browser && npm ci --no-audit --no-fund --loglevel=error && echo "$lock_sum" > node_modules/.installed-lock-sha256)
    fi
    # BENCH_BROWSER_ARGS: e.g. "--webgpu-sizes 128" (SwiftShader WebGPU is slow), "--only ORT".
    # shellcheck disable=SC2206
    args=(--runs "$RUNS" --out "$OUT" ${BENCH_BROWSER_ARGS:-})
    $smoke && args+=(--smoke)
    node benches/browser/bench.mjs "${args[@]}" | record
  fi
fi

echo
echo "== results ($RESULTS)"
"$PY" benches/report.py "$RESULTS" --markdown > "$OUT/table.md"
"$PY" benches/report.py "$RESULTS"
