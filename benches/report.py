"""Reads the JSON lines that scripts/bench.sh collected (target/bench/results.jsonl) and prints
ONE table: our figure, the peer's, their ratio (ours / peer in time: ≤ 1.0× means we are as fast
or faster) and the arithmetic rate each achieved against the machine's measured matmul rate.

  python benches/report.py [target/bench/results.jsonl] [--markdown]

Every figure is the median of its runs after warm-up, with min–max in brackets. Standard library
only. FLOP convention: 2 FLOP per multiply-add for the models (MACs counted by
benches/convert_weights.py) and for the matmul (2·N³).
"""
import json, sys


def load(path):
    rows = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def find(rows, **kw):
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def ms(r, per=1):
    """'median (min–max)' in ms per image."""
    if not r:
        return "n/a", None
    f = 1e3 / per
    med = r["median_s"] * f
    return f"{med:.1f} ({r['min_s'] * f:.1f}–{r['max_s'] * f:.1f})", med


def ratio(a, b):
    if a is None or not b:
        return "n/a"
    r = a / b
    return f"{r:.2f}×" if r >= 0.01 else f"{r:.1e}×"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = args[0] if args else "target/bench/results.jsonl"
    rows = load(path)
    meta = find(rows, kind="meta") or {}
    macs = {int(k): v for k, v in (find(rows, kind="parity") or {}).get("macs", {}).items()}
    if not macs:  # DenseNet121's multiply-adds scale with the input area (2.833 G at 224²)
        macs = {s: round(2833138688 * (s / 224) ** 2) for s in {r["size"] for r in rows if isinstance(r.get("size"), int)}}
    mm = [r for r in rows if r.get("kind") in ("matmul", "matmul_numpy")]
    peak = max((r["flop"] / r["median_s"] / 1e9 for r in mm), default=None)

    def rate(size, med_ms, against=None):
        """Achieved GFLOP/s, and its share of the matmul rate measured alongside (else the best)."""
        if med_ms is None or size not in macs:
            return "n/a"
        g = 2 * macs[size] / (med_ms / 1e3) / 1e9
        ref = against or peak
        return f"{g:.1f}" + (f" ({100 * g / ref:.0f} %)" if ref else "")

    table = []  # (section, what, ours, peer, ratio, ours GFLOP/s, peer GFLOP/s)

    par = find(rows, kind="parity")
    if par:
        onnx = "" if par.get("onnxruntime") is None else f" / onnxruntime {par['onnxruntime']:.7f}"
        table.append(("same weights", f"p(pneumonia), {par['input'].split('/')[-1]}: CLI / PyTorch{' / onnxruntime' if onnx else ''} (tolerance {par['tolerance']:g})",
                      f"{par['cli']:.7f}", f"PyTorch {par['torch']:.7f}{onnx}",
                      f"max abs Δp {max(par['abs_diff_torch'], par.get('abs_diff_onnx') or 0):.1e}", "", ""))
    sizes = sorted({r["size"] for r in rows if isinstance(r.get("size"), int)}, reverse=True)
    # 1. native inference (interleaved with the peer: the ratio is the median of per-pair ratios)
    for size in sizes:
        for batch in (1, 16):
            o = find(rows, impl="ours", kind="forward", size=size, batch=batch, group=None)
            t = find(rows, impl="pytorch", kind="forward", size=size, batch=batch)
            pair = find(rows, kind="pair_forward", size=size, batch=batch)
            if not (o or t):
                continue
            os_, om = ms(o, batch)
            ts, tm = ms(t, batch)
            for rec, label in ((o, "os_"), (t, "ts")):
                if rec and rec.get("cpu") and rec["cpu"]["median_s"] == rec["cpu"]["median_s"]:
                    extra = f"; CPU {rec['cpu']['median_s'] * 1e3 / batch:.1f}"
                    if label == "os_":
                        os_ += extra
                    else:
                        ts += extra
            r = ratio(om, tm)
            mmg = None
            if pair:
                r = f"{pair['ratio_median']:.2f}× ({pair['ratio_min']:.2f}–{pair['ratio_max']:.2f})"
                c = pair.get("cpu")
                if c and c["ratio_median"] == c["ratio_median"]:
                    r += f"; CPU {c['ratio_median']:.2f}×"
                mmg = pair.get("matmul_gflops_median")
            table.append(("native CPU", f"DenseNet121 {size}², batch {batch}, ms/image", os_, ts, r, rate(size, om, mmg), rate(size, tm, mmg)))
    for size in sizes:
        o = find(rows, impl="ours", kind="gradcam", size=size, group=None)
        t = find(rows, impl="pytorch", kind="gradcam_extra", size=size)
        if not (o or t):
            continue
        os_, om = ms(o)
        ts, tm = ms(t)
        if t:
            c = t["call"]
            ts += f"; whole GradCAM call {c['median_s'] * 1e3:.1f} ({c['min_s'] * 1e3:.1f}–{c['max_s'] * 1e3:.1f})"
        table.append(("native CPU", f"Grad-CAM extra cost {size}², batch 1, ms (peer: pytorch-grad-cam call − forward)", os_, ts, ratio(om, tm), "", ""))
    o = find(rows, impl="ours", kind="pipeline")
    if o:
        table.append(("native CPU", f"CLI path per file, one at a time (decode + {o['size']}² forward + Grad-CAM), ms", ms(o)[0], "", "", "", ""))
    for r in rows:
        if r.get("kind") == "cli_throughput":
            table.append(("native CPU", f"`pneumoscope predict` {r['images']} files (--batch 8, the default), ms/file (wall)", f"{r['wall_s'] * 1e3 / r['images']:.1f}", "", "", "", ""))

    # 2. browser
    for size in sorted(sizes):
        for ours_b, peer_b, label in (("webgpu", "ort-webgpu", "WebGPU (same adapter)"), ("cpu", "ort-wasm-1", "CPU, 1 thread: our wasm vs ORT WASM EP")):
            o = find(rows, group="browser", impl="ours", backend=ours_b, kind="forward", size=size)
            t = find(rows, group="browser", impl=peer_b, kind="forward", size=size)
            if not (o or t):
                continue
            os_, om = ms(o)
            ts, tm = ms(t)
            table.append(("browser", f"{label}, {size}², batch 1, ms/image", os_, ts, ratio(om, tm), rate(size, om), rate(size, tm)))
        t2 = find(rows, group="browser", impl="ort-wasm-2", kind="forward", size=size)
        if t2:
            ts, tm = ms(t2)
            o = find(rows, group="browser", impl="ours", backend="cpu", kind="forward", size=size)
            table.append(("browser", f"ORT WASM EP 2 threads (COOP/COEP) {size}², ms/image (vs our 1 thread)", ms(o)[0], ts, ratio(ms(o)[1], tm), "", rate(size, tm)))
    for b in ("webgpu", "cpu"):
        a = find(rows, group="browser", impl="ours", backend=b, kind="analyse")
        g = find(rows, group="browser", impl="ours", backend=b, kind="gradcam")
        if a:
            what = f"{a.get('image', 'synthetic input')}, OOD check {a.get('ood', '?')}"
            table.append(("browser", f"our app path ({b}): decode + preprocess + {a['size']}² forward + OOD check + Grad-CAM ({what}), ms/image", ms(a)[0], "", "", "", ""))
        if g:
            table.append(("browser", f"of which Grad-CAM ({b}), ms", ms(g)[0], "", "", "", ""))
    cold = [r for r in rows if r.get("kind") == "cold_start"]
    for r in cold:
            table.append(("browser cold start", f"open → ready ({r['backend']})", f"{r['ready_ms']:.0f} ms", "", "", "", ""))
            table.append(("browser cold start", f"open → first result ({r['backend']})", f"{r['first_result_ms']:.0f} ms", "", "", "", ""))
            b = r["bytes"]
            table.append(("browser cold start", f"bytes transferred ({r['backend']}): wasm / weights + OOD statistics / JS / other / total",
                          " / ".join(f"{b.get(k, 0) / 1e6:.2f} MB" for k in ("wasm", "weights", "js", "other", "total")), "", "", "", ""))
    if cold:  # the same dist/ for every backend: one row
        table.append(("browser cold start", "wasm raw / gzip -9 (goal ≤ 4 MB gzip)",
                      f"{cold[0]['wasm_raw'] / 1e6:.2f} MB / {cold[0]['wasm_gzip'] / 1e6:.2f} MB", "", "", "", ""))
    for r in rows:
        if r.get("kind") == "error":
            table.append(("errors", r.get("step", "?"), r.get("error", "")[:120], "", "", "", ""))
    for r in rows:
        if r.get("kind") == "browser_memory":
            s = r["samples"]
            desc = "; ".join(f"{x['images']}: heap {x['js_heap'] / 1e6:.1f} MB, wasm {x['wasm'] / 1e6:.1f} MB" for x in s)
            refused = f", {r['refused']} refused by the OOD check" if "refused" in r else ""
            table.append(("memory", f"browser ({r['backend']}) after N images{refused}: JS heap used, wasm memory", desc, "", "", "", ""))

    # 4. memory (CLI)
    for r in rows:
        if r.get("kind") == "cli_rss":
            table.append(("memory", f"CLI peak RSS, {r['images']} image(s)", f"{r['max_rss_kb'] / 1024:.0f} MB", "", "", "", ""))

    # 5. floor
    for r in mm:
        name = "torch.matmul" if r["kind"] == "matmul" else "numpy matmul"
        g = r["flop"] / r["median_s"] / 1e9
        lo, hi = r["flop"] / r["max_s"] / 1e9, r["flop"] / r["min_s"] / 1e9
        table.append(("machine floor", f"{name} {r['n']}², {r.get('threads', '?')} threads, GFLOP/s ({r.get('when', '')})", f"{g:.1f} ({lo:.1f}–{hi:.1f})", "", "", "", ""))

    for r in rows:
        if r.get("kind") == "pair_forward" and r.get("matmul_gflops_median"):
            table.append(("machine floor", f"torch.matmul {r['matmul_n']}² alongside the {r['size']}² batch {r['batch']} runs, GFLOP/s",
                          f"{r['matmul_gflops_median']:.1f} ({r['matmul_gflops_min']:.1f}–{r['matmul_gflops_max']:.1f})", "", "", "", ""))
    head = ("", "measurement", "ours", "peer", "ours/peer (time)", "ours GFLOP/s (% of matmul)", "peer GFLOP/s (%)")
    md = "--markdown" in sys.argv
    lines = []
    if meta:
        lines.append(f"{meta.get('date', '')} · {meta.get('machine', '')} · load before: {meta.get('load', '')}")
        lines.append(f"other processes at start: {meta.get('others') or 'none above 10 % CPU'}")
        lines.append(f"peers: {meta.get('peers', '')}; {meta.get('threads')} threads each (RAYON_NUM_THREADS, torch.set_num_threads), OMP_WAIT_POLICY={meta.get('omp_wait_policy')}; median of {meta.get('runs')} runs after warm-up (min–max)")
        lines.append("")
    if md:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for row in table:
            lines.append("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(r[i])) for r in table + [head]) for i in range(len(head))]
        fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
        lines.append(fmt(head))
        lines.append("  ".join("-" * w for w in widths))
        lines.extend(fmt(r) for r in table)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
