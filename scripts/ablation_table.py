#!/usr/bin/env python3
"""Table of a recipe ablation (docs/training.md, "Recipe ablations"): for each run folder under
RUNS (named ARM-sSEED), the weight average's stressed-validation ROC AUC at its best epoch and at
the last, the stressed NORMAL2-IM specificity at 0.5 and the clean AUC at that best epoch, and the
live weights' stressed AUC there (the weight average's own ablation). Standard library only."""

import json
import sys
from collections import defaultdict
from pathlib import Path


def epochs(run: Path) -> list[dict]:
    lines = (run / "validation.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def summary(records: list[dict]) -> dict:
    auc = lambda r: r["stressed"]["metrics_at_0.5"]["roc_auc"]
    best = max(records, key=auc)
    family = best["stressed"]["normal_specificity_by_family"].get("NORMAL2-IM", {})
    return {
        "epochs": len(records),
        "best_epoch": best["epoch"],
        "stressed_auc": auc(best),
        "last_auc": auc(records[-1]),
        "n2_spec": family.get("specificity", float("nan")),
        "spec": best["stressed"]["metrics_at_0.5"]["specificity"],
        "sens": best["stressed"]["metrics_at_0.5"]["sensitivity"],
        "clean_auc": best["clean"]["metrics_at_0.5"]["roc_auc"],
        "live_auc": best["live"]["stressed"]["metrics_at_0.5"]["roc_auc"] if "live" in best else float("nan"),
    }


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/abl")
    rows = defaultdict(dict)
    for run in sorted(root.glob("*-s*")):
        if not (run / "validation.jsonl").is_file():
            continue
        arm, seed = run.name.rsplit("-s", 1)
        rows[arm][seed] = summary(epochs(run))
    print("| arm | seed | epochs | best epoch | stressed AUC (best / last) | live AUC | stressed spec / sens | NORMAL2-IM spec | clean AUC |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arm, seeds in rows.items():
        for seed, s in sorted(seeds.items()):
            base = rows.get("base", {}).get(seed)
            delta = f" ({s['stressed_auc'] - base['stressed_auc']:+.4f})" if base and arm != "base" else ""
            print(f"| {arm} | {seed} | {s['epochs']} | {s['best_epoch']} | {s['stressed_auc']:.4f}{delta} / {s['last_auc']:.4f} | "
                  f"{s['live_auc']:.4f} | {s['spec']:.3f} / {s['sens']:.3f} | {s['n2_spec']:.3f} | {s['clean_auc']:.4f} |")


if __name__ == "__main__":
    main()
