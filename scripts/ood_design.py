#!/usr/bin/env python3
"""Compares designs of the out-of-distribution check on tuning data only (docs/ood.md, "Design").

    pneumoscope fit-ood --card CARD --data ../shared/data/chest_xray --save-features FEATURES
    /work/venvs/ood/bin/pip install numpy==2.4.6 scikit-image==0.26.0 pillow==13.0.0 matplotlib==3.11.2 safetensors==0.8.0
    /work/venvs/ood/bin/python scripts/ood_design.py CARD FEATURES [--out /tmp/ood-design]

FEATURES holds the embeddings (pooled features, then the first transition's channel means and
standard deviations) of the training part and the validation part of the weights' patient-grouped
split. The script embeds, through `pneumoscope predict --features`:

- the tuning non-X-rays of scripts/ood_measure.py (never its held-out set);
- 120 X-rays from the *training* folder, inverted (should be refused);
- 200 X-rays from the training folder with intensity changes, mild (contrast ±15 %, gamma
  e^±0.2) and strong (±30 %, e^±0.5) (should pass).

For each design (which feature groups, how many PPCA directions, how groups combine) the threshold
refuses 1 % of the validation X-rays, as `fit-ood` does, and the refusal rate of every group is
printed. No test image is read.
"""
import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import ood_measure  # noqa: E402  (the tuning non-X-rays)

TRAIN = ROOT / "../shared/data/chest_xray/train"


def embed(cli, card, files):
    rows = []
    for i in range(0, len(files), 100):
        out = subprocess.run([str(cli), "predict", "--card", str(card), "--show-anyway", "--features",
                              *map(str, files[i:i + 100])], capture_output=True, text=True, check=True).stdout
        rows += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return rows


def make_probes(out, cli, card):
    ood_measure.make_nonxray(out)
    groups = {}
    for r in embed(cli, card, sorted((out / "nonxray" / "tuning").glob("*.png"))):
        groups.setdefault("nonxray-" + Path(r["file"]).name.split("-")[0], []).append(r["features"])
    train = sorted(TRAIN.glob("*/*.jpeg"))
    random.seed(0)
    inverted = []
    (out / "inverted").mkdir(exist_ok=True)
    for p in random.sample(train, 120):
        q = out / "inverted" / (p.stem + ".png")
        ImageOps.invert(Image.open(p).convert("L")).save(q)
        inverted.append(q)
    groups["inverted-xray"] = [r["features"] for r in embed(cli, card, inverted)]
    random.seed(1)
    rng = np.random.default_rng(1)
    jittered = {"xray-mild-jitter": [], "xray-strong-jitter": []}
    (out / "jitter").mkdir(exist_ok=True)
    for i, p in enumerate(random.sample(train, 200)):
        a = np.asarray(Image.open(p).convert("L"), dtype=np.float64) / 255
        for kind, (c, g) in {"xray-mild-jitter": (0.15, 0.2), "xray-strong-jitter": (0.3, 0.5)}.items():
            contrast, bright = rng.uniform(1 - c, 1 + c), rng.uniform(-c / 2, c / 2)
            gamma = np.exp(rng.uniform(-g, g))
            b = np.clip((a ** gamma - 0.5) * contrast + 0.5 + bright, 0, 1)
            q = out / "jitter" / f"{kind}-{i}.png"
            Image.fromarray((b * 255).astype(np.uint8)).save(q)
            jittered[kind].append(q)
    for kind, files in jittered.items():
        groups[kind] = [r["features"] for r in embed(cli, card, files)]
    return groups


def ppca(x, k):
    """Mean, top-k directions and variances, residual variance (as src/ood/ppca.rs)."""
    mu = x.mean(0)
    w, v = np.linalg.eigh(np.cov(x - mu, rowvar=False))
    w, v = w[::-1], v[:, ::-1]
    floor = 1e-6 * w.sum() / x.shape[1]
    residual = max((w.sum() - w[:k].sum()) / (x.shape[1] - k), floor)
    return mu, v[:, :k], np.maximum(w[:k], floor), residual


def squared_distance(model, x):
    mu, v, lam, residual = model
    c = x - mu
    z = c @ v
    return (z ** 2 / lam).sum(1) + ((c ** 2).sum(1) - (z ** 2).sum(1)) / residual


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("card", type=Path)
    ap.add_argument("features", type=Path)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ood-design"))
    ap.add_argument("--cli", type=Path, default=ROOT / "target/release/pneumoscope")
    ap.add_argument("--pooled", type=int, default=1024, help="pooled features in the embedding (DenseNet121: 1024)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "probes.json"
    if not cache.exists():
        cache.write_text(json.dumps(make_probes(args.out, args.cli, args.card)))
    groups = {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(cache.read_text()).items()}
    f = load_file(str(args.features))
    train, val = f["train"].astype(np.float64), f["val"].astype(np.float64)
    p, a = slice(0, args.pooled), slice(args.pooled, None)

    def report(name, score):
        sv = score(val)
        t = np.sort(sv)[int(np.ceil(0.99 * len(sv))) - 1]
        nonxray = [(np.mean(score(x) > t), len(x)) for g, x in groups.items() if g.startswith("nonxray")]
        overall = sum(r * n for r, n in nonxray) / sum(n for _, n in nonxray)
        rates = " ".join(f"{g} {np.mean(score(x) > t):.3f}" for g, x in sorted(groups.items()))
        print(f"{name:<34} all tuning non-X-rays {overall:.3f} | {rates}")

    mp = ppca(train[:, p], 64)
    report("pooled, 64", lambda x: squared_distance(mp, x[:, p]))
    for k in [8, 16, 32, 64]:
        ma = ppca(train[:, a], k)
        report(f"appearance, {k}", lambda x: squared_distance(ma, x[:, a]))
        report(f"sum: pooled 64 + appearance {k}",
               lambda x: squared_distance(mp, x[:, p]) + squared_distance(ma, x[:, a]))
        sp = np.quantile(squared_distance(mp, val[:, p]), 0.99)
        sa = np.quantile(squared_distance(ma, val[:, a]), 0.99)
        report(f"max of each / its val 99th pct, {k}",
               lambda x: np.maximum(squared_distance(mp, x[:, p]) / sp, squared_distance(ma, x[:, a]) / sa))
        report(f"sum of each / its val 99th pct, {k}",
               lambda x: squared_distance(mp, x[:, p]) / sp + squared_distance(ma, x[:, a]) / sa)


if __name__ == "__main__":
    main()
