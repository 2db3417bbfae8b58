#!/usr/bin/env bash
# One step of the fuzzing campaign (docs/fuzzing.md): runs a cargo-fuzz target for SECONDS with
# the project's limits, its corpus in runs/fuzz/corpus/TARGET (kept between runs, so a second run
# goes on where the first stopped) and its seeds: the committed fixtures and the corpus an earlier
# machine kept (fuzz/corpora/TARGET.tar.xz, written by scripts/fuzz_keep.sh). libFuzzer's output
# is appended to runs/fuzz/TARGET.log, each line stamped with the Unix time, for
# `python3 scripts/fuzz_summary.py runs/fuzz` (executions, coverage, plateau).
#
#   scripts/fuzz.sh TARGET SECONDS
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --version 0.13.2 --locked`);
# build once with `cd fuzz && cargo +nightly fuzz build -O` (about half an hour on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?target: decode dicom raster_dimensions model_card weights ood_statistics keras_model}
seconds=${2:?seconds}
root=$PWD
runs=$root/runs/fuzz
seeds=$runs/seeds/$target
kept=$runs/kept/$target
mkdir -p "$runs/corpus/$target" "$runs/artifacts/$target" "$seeds"

# The committed corpus of earlier sessions, unpacked once per machine.
archive=fuzz/corpora/$target.tar.xz
if [ -f "$archive" ] && [ ! -d "$kept" ]; then
  mkdir -p "$kept.part" && tar -xJf "$archive" -C "$kept.part" && mv "$kept.part" "$kept"
fi

# Seeds: the fixtures a target's bytes stand for, plus what earlier runs found (tests/fuzz/TARGET).
case $target in
  decode) dirs=(tests/data tests/data/bad tests/fixtures/dicom) ;;
  dicom | raster_dimensions) dirs=() ;; # structure-aware: their bytes are edits of built-in files
  model_card) cp -f weights/model-card.json "$seeds/"; dirs=() ;;
  ood_statistics) cp -f weights/*.ood.safetensors "$seeds/"; dirs=() ;;
  keras_model) dirs=(tests/fixtures/keras) ;;
  weights)
    # A tiny DenseNet's container (f32), written by our own CLI in seconds (the kept corpus holds one).
    if [ ! -s "$seeds/tiny.safetensors" ] && [ ! -d "$kept" ]; then
      bin=${PNEUMOSCOPE:-target/release/pneumoscope}
      "$bin" train --tiny --data "${PNEUMOSCOPE_DATA:-../shared/data/chest_xray}" --limit 32 \
        --epochs 1 --image-size 32 --out "$runs/tiny-run" > "$runs/tiny-run.log" 2>&1
      cp "$runs/tiny-run/best.safetensors" "$seeds/tiny.safetensors"
    fi
    dirs=() ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
[ -d "tests/fuzz/$target" ] && dirs+=("tests/fuzz/$target")
[ -d "$kept" ] && dirs+=("runs/fuzz/kept/$target")
abs=()
for d in "${dirs[@]}"; do abs+=("$root/$d"); done
# Tokens the parser compares against (keys, magic numbers), so mutations spell them sooner; the
# safetensors header's tokens serve both targets that read that container.
dict=()
parts=("fuzz/dicts/$target.dict")
case $target in weights | ood_statistics) parts+=(fuzz/dicts/safetensors.dict) ;; esac
if [ -f "${parts[0]}" ]; then
  cat "${parts[@]}" > "$runs/$target.dict"
  dict=(-dict="$runs/$target.dict")
fi

# Known false leak reports (fuzz/lsan.supp) would otherwise stop a run.
export LSAN_OPTIONS="suppressions=$root/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

# -reduce_inputs=0: libFuzzer never deletes a corpus file (by default it replaces one with a smaller
# input of the same coverage), so the corpus at any past moment is the files written by then, and
# scripts/fuzz_coverage.py can replay it exactly.
cd fuzz
cargo +nightly fuzz run -O "$target" "$runs/corpus/$target" "$seeds" "${abs[@]}" -- \
  -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=5 -print_final_stats=1 -reduce_inputs=0 \
  -artifact_prefix="$runs/artifacts/$target/" "${dict[@]}" 2>&1 |
  perl -ne 'BEGIN { $| = 1 } print time(), " ", $_' >> "$runs/$target.log"
