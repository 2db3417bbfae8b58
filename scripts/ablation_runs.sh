#!/bin/bash
# Recipe ablation on a 64² proxy (docs/training.md, "Recipe ablations"): every ARM × SEED run, one
# after another, into runs/abl/ARM-sSEED (a finished run is skipped, an interrupted one resumed).
# Usage: SEEDS="1 2" ARMS="base ls01 mixup02 no-balanced no-borders no-intensity no-crops" scripts/ablation_runs.sh
cd "$(dirname "$0")/.."
B=${PNEUMOSCOPE:-target/release/pneumoscope}
mkdir -p runs/abl
common="train --data ${PNEUMOSCOPE_DATA:-../shared/data/chest_xray} --recipe shift-robust --image-size 64 --epochs 8 --lr 1e-3 --min-lr 1e-5 --schedule cosine --ema 0.995 --early-stopping 8"
for seed in $SEEDS; do
  for arm in $ARMS; do
    case $arm in
      base) extra="";;
      no-borders) extra="--without borders";;
      no-intensity) extra="--without intensity-jitter";;
      no-balanced) extra="--without balanced-sampling";;
      no-crops) extra="--without crops";;
      ls01) extra="--label-smoothing 0.1";;
      mixup02) extra="--mixup 0.2";;
      *) echo "unknown arm $arm" >&2; exit 2;;
    esac
    out=runs/abl/$arm-s$seed
    [ -f $out/done ] && continue
    if [ -f $out/config.json ]; then $B train --resume --out $out; else $B $common --seed $seed --out $out $extra; fi > $out.log 2>&1 && touch $out/done
  done
done
