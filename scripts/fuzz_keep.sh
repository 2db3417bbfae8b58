#!/usr/bin/env bash
# Keeps a target's corpus in the repository, so that the campaign (docs/fuzzing.md) goes on from
# it on a new machine instead of starting again from the seeds: libFuzzer's -merge=1 picks the
# fewest inputs of this machine's corpus, the corpus kept before and the generated seeds that
# reach every edge they reach together, and they are packed, sorted and without times (the same
# files give the same archive), into fuzz/corpora/TARGET.tar.xz. The fixtures are seeds of every
# run anyway and are left out.
#
#   scripts/fuzz_keep.sh TARGET
#
# Needs the fuzz build (scripts/fuzz.sh) and a finished run of TARGET; run it beside no other run.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?target}
root=$PWD
runs=$root/runs/fuzz
binary=fuzz/target/x86_64-unknown-linux-gnu/release/$target
[ -x "$binary" ] || { echo "no fuzz build of $target: see scripts/fuzz.sh" >&2; exit 2; }
inputs=()
for d in "$runs/corpus/$target" "$runs/kept/$target" "$runs/seeds/$target"; do
  [ -d "$d" ] && inputs+=("$d")
done
[ ${#inputs[@]} -gt 0 ] || { echo "no corpus of $target under $runs" >&2; exit 2; }

merged=$(mktemp -d)
trap 'rm -rf "$merged"' EXIT
export LSAN_OPTIONS="suppressions=$root/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
"$binary" -merge=1 -rss_limit_mb=2048 -timeout=5 "$merged" "${inputs[@]}" 2>&1 |
  { grep -E "^MERGE-OUTER: [0-9]+ new files" || true; } >&2

mkdir -p fuzz/corpora
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$merged" -cf - . |
  xz -9e > "fuzz/corpora/$target.tar.xz.part"
mv "fuzz/corpora/$target.tar.xz.part" "fuzz/corpora/$target.tar.xz"
echo "fuzz/corpora/$target.tar.xz: $(ls "$merged" | wc -l) inputs, $(du -k "fuzz/corpora/$target.tar.xz" | cut -f1) kB"
