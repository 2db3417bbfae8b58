#!/usr/bin/env python3
"""Measures the out-of-distribution refusal of `pneumoscope predict` (see README, "Refusing
what is not a chest X-ray").

    python -m venv /work/venvs/ood && /work/venvs/ood/bin/pip install numpy==2.4.6 scikit-image==0.26.0 pillow==13.0.0 matplotlib==3.11.2
    cargo build --release
    /work/venvs/ood/bin/python scripts/ood_measure.py [--data ../shared/data/chest_xray] [--out /tmp/ood-eval]

(--data defaults to $PNEUMOSCOPE_DATA, else ../shared/data/chest_xray; relative to the repository root.)

1. Makes non-X-ray images in OUT/nonxray/{tuning,heldout,heldout2}/: natural photos (only the
   images bundled in scikit-image's and matplotlib's wheels; nothing is downloaded), documents and screenshots drawn with
   PIL, noise, flat images and radiograph-like images (Shepp-Logan CT phantom, synthetic limb
   radiographs). Tuning and held-out sets share no source photo and no random seed.
2. Makes inverted, rotated and cropped versions of the official test X-rays in OUT/xray/.
3. Runs `pneumoscope predict --show-anyway` on all of them and on the 624 test X-rays and prints
   the refusal rate of each group (and the fix hinted for the inverted / rotated ones).

Only the tuning non-X-rays and the validation X-rays (inside `fit-ood`) may inform choices; the
held-out non-X-rays and every test X-ray are measured, never tuned on.
"""
import argparse
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from skimage import data as skdata
from skimage.transform import radon

ROOT = Path(__file__).resolve().parent.parent
# The data set as the tests find it: $PNEUMOSCOPE_DATA, default ../shared/data/chest_xray (relative
# to the repository root).
DATA = ROOT / (os.environ.get("PNEUMOSCOPE_DATA") or "../shared/data/chest_xray")

# Photos bundled in the scikit-image wheel, by split (near-duplicates kept together).
TUNING_PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "horse", "brick", "gravel", "motorcycle_left",
                 "motorcycle_right", "hubble_deep_field", "immunohistochemistry", "logo"]
HELDOUT_PHOTOS = ["rocket", "coins", "moon", "grass", "colorwheel", "clock", "cell", "retina", "microaneurysms"]


def photo(name):
    if name == "motorcycle_left":
        return skdata.stereo_motorcycle()[0]
    if name == "motorcycle_right":
        return skdata.stereo_motorcycle()[1]
    return getattr(skdata, name)()


def to_pil(a):
    a = np.asarray(a)
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        a = (255 * (a - a.min()) / max(a.max() - a.min(), 1e-12)).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    return Image.fromarray(a)


def photo_variants(img, rng):
    """Full colour, grayscale, and crops (colour and grey) of one photo."""
    out = [img, img.convert("L")]
    w, h = img.size
    for _ in range(3):
        cw, ch = int(w * rng.uniform(0.4, 0.7)), int(h * rng.uniform(0.4, 0.7))
        x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
        crop = img.crop((x, y, x + cw, y + ch))
        out += [crop, crop.convert("L")]
    return out


WORDS = ("patient report lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt labore magna aliqua invoice total date amount page chapter figure table results "
         "the quick brown fox jumps over lazy dog 2024 12.5 mg dose").split()


def font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def document(rng):
    w, h = int(rng.integers(400, 700)), int(rng.integers(500, 900))
    dark = rng.random() < 0.25
    bg, fg = ((20, 20, 20), (230, 230, 230)) if dark else ((255, 255, 255), (0, 0, 0))
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    y = 20
    size = int(rng.integers(12, 28))
    while y < h - 30:
        line = " ".join(rng.choice(WORDS, int(rng.integers(3, 12))))
        d.text((20, y), line, fill=fg, font=font(size))
        y += int(size * rng.uniform(1.3, 2.2))
        if rng.random() < 0.1:
            d.rectangle((20, y, w - 20, y + 2), fill=fg)
            y += 10
    return img if rng.random() < 0.7 else img.convert("L")


def screenshot(rng):
    w, h = int(rng.integers(500, 1000)), int(rng.integers(400, 800))
    img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(200, 256, 3)))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, w, 50), fill=tuple(int(v) for v in rng.integers(0, 120, 3)))
    d.text((15, 15), "Settings  File  Edit  View", fill=(255, 255, 255), font=font(18))
    for _ in range(int(rng.integers(4, 12))):
        x, y = int(rng.integers(0, w - 120)), int(rng.integers(60, h - 60))
        bw, bh = int(rng.integers(60, 300)), int(rng.integers(20, 120))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        d.rounded_rectangle((x, y, x + bw, y + bh), radius=6, fill=colour, outline=(80, 80, 80))
        d.text((x + 8, y + 4), " ".join(rng.choice(WORDS, 2)), fill=(0, 0, 0), font=font(14))
    return img


def noise(rng):
    w, h = int(rng.integers(200, 600)), int(rng.integers(200, 600))
    kind = int(rng.integers(0, 4))
    if kind == 0:
        a = rng.normal(128, rng.uniform(10, 80), (h, w))
    elif kind == 1:
        a = rng.uniform(0, 255, (h, w, 3))
    elif kind == 2:
        a = np.where(rng.random((h, w)) < rng.uniform(0.05, 0.5), 255.0, 0.0)
    else:  # smooth blobs
        a = np.asarray(Image.fromarray(rng.uniform(0, 255, (h // 16 + 1, w // 16 + 1)).astype(np.uint8)).resize((w, h), Image.BICUBIC), dtype=np.float64)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def flat(rng, i):
    w, h = int(rng.integers(100, 500)), int(rng.integers(100, 500))
    if i % 3 == 0:
        return Image.new("L", (w, h), int(rng.integers(0, 256)))
    if i % 3 == 1:
        return Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
    g = np.linspace(rng.uniform(0, 128), rng.uniform(128, 255), w)[None, :].repeat(h, 0)
    return Image.fromarray(g.astype(np.uint8) if rng.random() < 0.5 else g.T[:h, :w].astype(np.uint8) if h <= w else g.astype(np.uint8))


def limb(rng):
    """A synthetic radiograph: bright, blurred bones (ellipses) in grey soft tissue on black."""
    w, h = int(rng.integers(300, 600)), int(rng.integers(400, 700))
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    d.ellipse((w * 0.2, -h * 0.1, w * 0.8, h * 1.1), fill=int(rng.integers(60, 110)))
    for _ in range(int(rng.integers(1, 4))):
        cx = w * rng.uniform(0.35, 0.65)
        bw = w * rng.uniform(0.05, 0.12)
        d.rounded_rectangle((cx - bw, h * rng.uniform(0, 0.3), cx + bw, h * rng.uniform(0.7, 1.0)), radius=int(bw), fill=int(rng.integers(180, 250)))
    return img.filter(ImageFilter.GaussianBlur(float(rng.uniform(2, 6))))


def phantom_variants(rng):
    p = skdata.shepp_logan_phantom()
    out = [to_pil(p), to_pil(radon(p[::4, ::4], theta=np.linspace(0, 180, 90)))]
    for _ in range(4):
        noisy = p + rng.normal(0, rng.uniform(0.02, 0.1), p.shape)
        out.append(to_pil(noisy).filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 2)))))
    out.append(to_pil(1 - p))
    return out


def sample_data(name):
    """A file bundled in matplotlib's wheel (mpl-data/sample_data)."""
    import matplotlib
    return Path(matplotlib.get_data_path()) / "sample_data" / name


def grey(a, rng):
    """A 2-D array as an 8-bit image, window 1st-99.5th percentile, sometimes in a colour map."""
    lo, hi = np.percentile(a, [1, 99.5])
    g = np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1)
    if rng.random() < 0.3:
        return Image.fromarray((np.stack([g, g ** 0.5, 1 - g], -1) * 255).astype(np.uint8))
    return Image.fromarray((g * 255).astype(np.uint8))


def make_heldout2(d):
    """The second held-out set (made 2026-12-02, after the first had been seen for v0.4.0): other
    sources (matplotlib's sample photos, a sagittal head MRI, elevation maps, scikit-image's
    chessboards, the LFW thumbnails between the first set's), a new seed for the drawn ones."""
    import gzip
    rng = np.random.default_rng(3)
    for name in ["grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"]:
        for i, v in enumerate(photo_variants(Image.open(sample_data(name)).convert("RGB"), rng)):
            v.save(d / f"photo-{Path(name).stem}-{i}.png")
    with gzip.open(sample_data("s1045.ima.gz")) as f:
        mri = np.frombuffer(f.read(), ">u2").astype(np.float64).reshape(256, 256)
    for i, v in enumerate(photo_variants(grey(mri, rng).convert("L"), rng)):
        v.save(d / f"radiograph-mri-{i}.png")
    to_pil(mri).resize((512, 512), Image.BICUBIC).filter(ImageFilter.GaussianBlur(1.5)).save(d / "radiograph-mri-blurred.png")
    elevation = np.load(sample_data("jacksboro_fault_dem.npz"))["elevation"]
    topo = np.load(sample_data("topobathy.npz"))["topo"]
    for i, a in enumerate([elevation, topo, elevation[::-1], np.gradient(elevation)[0]]):
        grey(a, rng).resize((400, 340)).save(d / f"photo-elevation-{i}.png")
    for name in ["chessboard_GRAY.png", "chessboard_RGB.png"]:
        Image.open(Path(skdata.__file__).parent / name).save(d / f"document-{Path(name).stem}.png")
    faces = skdata.lfw_subset()
    for i in range(5, len(faces), 10):
        to_pil(faces[i]).resize((100, 100)).save(d / f"photo-face-{i}.png")
    drawn(d, rng, phantoms=True, limbs=13)


def drawn(d, rng, phantoms, limbs):
    """The drawn non-X-rays of one set, in this order (the seeds' sequence depends on it):
    documents, screenshots, noise, flat images, then CT phantoms (optional) and limbs."""
    for i in range(40):
        document(rng).save(d / f"document-{i}.png")
    for i in range(40):
        screenshot(rng).save(d / f"screenshot-{i}.png")
    for i in range(30):
        noise(rng).save(d / f"noise-{i}.png")
    for i in range(21):
        flat(rng, i).save(d / f"flat-{i}.png")
    if phantoms:
        for i, v in enumerate(phantom_variants(rng)):
            v.save(d / f"radiograph-phantom-{i}.png")
    for i in range(limbs):
        limb(rng).save(d / f"radiograph-limb-{i}.png")


def make_nonxray(out):
    d = out / "nonxray" / "heldout2"
    d.mkdir(parents=True, exist_ok=True)
    make_heldout2(d)
    for split, photos, seed in [("tuning", TUNING_PHOTOS, 1), ("heldout", HELDOUT_PHOTOS, 2)]:
        d = out / "nonxray" / split
        d.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        for name in photos:
            for i, v in enumerate(photo_variants(to_pil(photo(name)), rng)):
                v.save(d / f"photo-{name}-{i}.png")
        if split == "heldout":
            faces = skdata.lfw_subset()
            for i in range(0, len(faces), 10):
                to_pil(faces[i]).resize((100, 100)).save(d / f"photo-face-{i}.png")
            for name in ["page", "text"]:
                to_pil(photo(name)).save(d / f"document-skimage-{name}.png")
        drawn(d, rng, phantoms=split == "heldout", limbs=20 if split == "tuning" else 13)


def test_xrays(data):
    return sorted((data / "test").glob("*/*.jpeg"))


def make_transformed(data, out):
    files = test_xrays(data)
    subset = files[::6]
    for name, chosen, fn in [
        ("inverted", files, lambda im: Image.eval(im.convert("L"), lambda v: 255 - v)),
        ("rot15", subset, lambda im: im.convert("L").rotate(15, expand=True)),
        ("rot30", subset, lambda im: im.convert("L").rotate(30, expand=True)),
        ("rot90", subset, lambda im: im.transpose(Image.Transpose.ROTATE_270)),  # 90° clockwise
        ("rot180", subset, lambda im: im.transpose(Image.Transpose.ROTATE_180)),
        ("rot270", subset, lambda im: im.transpose(Image.Transpose.ROTATE_90)),
        ("crop-quarter", subset, lambda im: im.crop((0, 0, im.width // 2, im.height // 2))),
    ]:
        d = out / "xray" / name
        d.mkdir(parents=True, exist_ok=True)
        for f in chosen:
            target = d / f"{f.parent.name}-{f.stem}.png"
            if not target.exists():
                fn(Image.open(f)).save(target)


def predict(cli, card, files, extra=()):
    rows = []
    for i in range(0, len(files), 200):
        out = subprocess.run([str(cli), "predict", "--card", str(card), "--show-anyway", *extra, *map(str, files[i:i + 200])],
                             capture_output=True, text=True, check=True).stdout
        rows += [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return rows


def summarise(name, rows, goal=None):
    errors = [r for r in rows if "error" in r]
    ok = [r for r in rows if "error" not in r]
    refused = [r for r in ok if r["refused"]]
    fixes = Counter(r["ood"].get("fix") for r in refused)
    rate = len(refused) / max(len(ok), 1)
    fix_text = ", ".join(f"{k or 'none'} {v}" for k, v in fixes.most_common()) if refused else ""
    line = f"{name:<32} {len(refused):>4} / {len(ok):<4} refused ({100 * rate:5.1f} %)"
    if goal:
        line += f"   goal {goal}"
    if fix_text:
        line += f"   fix hinted: {fix_text}"
    if errors:
        line += f"   ({len(errors)} unreadable)"
    print(line, flush=True)
    return rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ood-eval"))
    ap.add_argument("--card", type=Path, default=ROOT / "weights/model-card.json")
    ap.add_argument("--cli", type=Path, default=ROOT / "target/release/pneumoscope")
    ap.add_argument("--only", choices=["tuning", "all"], default="all",
                    help="tuning: only the tuning non-X-rays (while choosing settings)")
    args = ap.parse_args()
    make_nonxray(args.out)
    card = json.loads(args.card.read_text())
    if "ood" not in card:
        sys.exit(f"{args.card} has no OOD statistics: run `pneumoscope fit-ood` first")
    print(f"OOD: {card['ood']['method']}; threshold {card['ood']['threshold']:.2f}")

    def group(folder, prefix=""):
        return sorted(p for p in folder.glob(f"{prefix}*.png"))

    for split in ["tuning"] + (["heldout", "heldout2"] if args.only == "all" else []):
        d = args.out / "nonxray" / split
        rows = predict(args.cli, args.card, group(d))
        by_kind = defaultdict(list)
        for r in rows:
            by_kind[Path(r["file"]).name.split("-")[0]].append(r)
        print(f"-- non-X-ray images, {split} set")
        for kind, rs in sorted(by_kind.items()):
            summarise(f"  {kind}", rs)
        summarise(f"  all {split} non-X-rays", rows, "≥ 99 %")
    if args.only == "tuning":
        return
    make_transformed(args.data, args.out)
    print("-- official test X-rays (never tuned on)")
    rows = predict(args.cli, args.card, test_xrays(args.data))
    for cls in ["NORMAL", "PNEUMONIA"]:
        summarise(f"  {cls}", [r for r in rows if f"/{cls}/" in r["file"]])
    summarise("  all 624 test X-rays", rows, "≤ 1 %")
    print("-- transformed test X-rays")
    for name in ["inverted", "rot15", "rot30", "rot90", "rot180", "rot270", "crop-quarter"]:
        summarise(f"  {name}", predict(args.cli, args.card, group(args.out / "xray" / name)))
    inv = sorted((args.out / "xray" / "inverted").glob("*.png"))
    rows = predict(args.cli, args.card, inv, ["--invert"])
    summarise("  inverted, then --invert", rows)


if __name__ == "__main__":
    main()
