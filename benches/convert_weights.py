"""Our shipped weights → the peers' formats, so that every benchmark runs the SAME model.

  python benches/convert_weights.py [--card weights/model-card.json] [--out target/bench]
         [--cli target/release/pneumoscope] [--xray PATH]

Writes, under --out:
  densenet121.pth          torchvision `densenet121(num_classes=1)` state_dict (int8 kernels
                           dequantized exactly as the app does: w = q · scale, in f32)
  densenet121-<S>.onnx     the same model exported by torch.onnx.export, input [1, 3, S, S]
                           (S = 128, the card's size, and 224), for onnxruntime-web
  parity.json              the check below

Then checks that PyTorch (and onnxruntime, if installed) give OUR CLI's probability on a real
X-ray. The X-ray is first resized (PIL, bilinear) to the card's input size and saved as a PNG;
both the CLI and torch then read that PNG, whose size already matches, so neither resizes and
both models see the very same numbers. Tolerance: |Δp| ≤ 1e-4. The same comparison on the
original (full-size) JPEG is reported too, but not checked: there the CLI resizes with the
`image` crate's triangle filter and torch with PIL, which differ slightly.
Exits non-zero if the check fails.
"""
import argparse, json, os, re, struct, subprocess, sys
import numpy as np

TOLERANCE = 1e-4


def read_container(path):
    """safetensors → {name: float32 ndarray}, int8 kernels dequantized with their per-row scales."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    assert meta.get("format") in ("pneumoscope-int8-v1", "pneumoscope-f32-v1"), meta
    body = raw[8 + n:]
    dtypes = {"F32": np.float32, "I8": np.int8}
    arrays = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        arrays[name] = np.frombuffer(body[a:b], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    out = {}
    for name, a in arrays.items():
        if name.endswith(".scale"):
            continue
        if a.dtype == np.int8:
            scale = arrays[name + ".scale"].astype(np.float32)
            # Same arithmetic as src/weights/codec.rs: f32(q) * scale, one scale per output channel.
            a = a.astype(np.float32) * scale.reshape((-1,) + (1,) * (a.ndim - 1))
        out[name] = np.ascontiguousarray(a, dtype=np.float32)
    return out


def torchvision_name(name):
    """Our burn module path → torchvision's state_dict key."""
    name = re.sub(r"^features\.blocks\.(\d+)\.layers\.(\d+)\.",
                  lambda m: f"features.denseblock{int(m[1]) + 1}.denselayer{int(m[2]) + 1}.", name)
    name = re.sub(r"^features\.transitions\.(\d+)\.", lambda m: f"features.transition{int(m[1]) + 1}.", name)
    name = re.sub(r"\.gamma$", ".weight", name)
    name = re.sub(r"\.beta$", ".bias", name)
    return name


def state_dict(path):
    import torch
    sd = {}
    for name, a in read_container(path).items():
        if name == "classifier.weight":
            a = a.T  # burn's Linear is [in, out]; torch's is [out, in]
        sd[torchvision_name(name)] = torch.from_numpy(np.array(a, dtype=np.float32, copy=True))
    return sd


def load_model(card_path):
    import torch, torchvision
    card = json.load(open(card_path))
    arch = card["architecture"]
    assert arch["family"] == "densenet" and arch["depth"] == 121, arch
    weights = os.path.join(os.path.dirname(card_path), card["weights"]["file"])
    model = torchvision.models.densenet121(num_classes=arch["num_outputs"])
    sd = state_dict(weights)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # num_batches_tracked is a training counter, not used in eval.
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, (missing, unexpected)
    return model.eval(), card


def preprocess(img, card):
    """PIL image already at the card's size → [1, 3, S, S] float32, as src/preprocess.rs."""
    a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    mean = np.array(card["normalisation"]["mean"], dtype=np.float32)
    std = np.array(card["normalisation"]["std"], dtype=np.float32)
    return ((a - mean) / std).transpose(2, 0, 1)[None].copy()


def count_macs(model, size):
    """Multiply-adds of one forward at size×size (convolutions and the classifier)."""
    import torch
    total = [0]

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total[0] += output.numel() * k
        else:
            total[0] += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--card", default="weights/model-card.json")
    p.add_argument("--out", default="target/bench")
    p.add_argument("--cli", default="target/release/pneumoscope")
    # The data set as the tests find it: $PNEUMOSCOPE_DATA, default ../shared/data/chest_xray.
    data = os.environ.get("PNEUMOSCOPE_DATA") or "../shared/data/chest_xray"
    p.add_argument("--xray", default=os.path.join(data, "test", "PNEUMONIA", "person1_virus_6.jpeg"))
    p.add_argument("--sizes", default="128,224", help="ONNX input sizes to export")
    a = p.parse_args()
    import torch
    from PIL import Image
    os.makedirs(a.out, exist_ok=True)
    model, card = load_model(a.card)
    torch.save(model.state_dict(), os.path.join(a.out, "densenet121.pth"))
    onnx_files = []
    for size in [int(s) for s in a.sizes.split(",")]:
        path = os.path.join(a.out, f"densenet121-{size}.onnx")
        x = torch.zeros(1, 3, size, size)
        kwargs = dict(input_names=["input"], output_names=["logits"], opset_version=17)
        try:
            torch.onnx.export(model, (x,), path, dynamo=False, **kwargs)
        except TypeError:  # older torch without the dynamo switch
            torch.onnx.export(model, (x,), path, **kwargs)
        onnx_files.append(path)

    # --- parity with our CLI on a real X-ray -----------------------------------------------------
    size = card["input_size"]
    xray = a.xray
    if not os.path.exists(xray):
        folder = os.path.dirname(xray)
        xray = os.path.join(folder, sorted(os.listdir(folder))[0])
    small = os.path.join(a.out, f"parity-xray-{size}.png")
    Image.open(xray).convert("L").resize((size, size), Image.BILINEAR).save(small)

    def torch_p(img):
        with torch.inference_mode():
            return torch.sigmoid(model(torch.from_numpy(preprocess(img, card))))[0, 0].item()

    p_torch = torch_p(Image.open(small))
    full = Image.open(xray).convert("L").resize((size, size), Image.BILINEAR)
    p_torch_full = torch_p(full)
    p_onnx = None
    try:
        import onnxruntime as ort
        sess = ort.InferenceSession(onnx_files[0] if f"-{size}." in onnx_files[0] else onnx_files[-1],
                                    providers=["CPUExecutionProvider"])
        logits = sess.run(None, {"input": preprocess(Image.open(small), card)})[0]
        p_onnx = float(1 / (1 + np.exp(-logits[0, 0])))
    except ImportError:
        pass
    out = subprocess.run([a.cli, "predict", "--card", a.card, small, xray], check=True, capture_output=True, text=True).stdout
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    p_cli, p_cli_full = rows[0]["probability"], rows[1]["probability"]
    result = {
        "kind": "parity", "xray": xray, "input": small, "tolerance": TOLERANCE,
        "cli": p_cli, "torch": p_torch, "onnxruntime": p_onnx,
        "abs_diff_torch": abs(p_cli - p_torch),
        "abs_diff_onnx": None if p_onnx is None else abs(p_cli - p_onnx),
        "full_size_cli": p_cli_full, "full_size_torch_pil_resize": p_torch_full,
        "full_size_abs_diff": abs(p_cli_full - p_torch_full),
        "torch_version": torch.__version__, "onnx_files": onnx_files,
        "macs": {s: count_macs(model, s) for s in (128, 224)},
    }
    json.dump(result, open(os.path.join(a.out, "parity.json"), "w"), indent=2)
    print(json.dumps(result))
    ok = result["abs_diff_torch"] <= TOLERANCE and (p_onnx is None or result["abs_diff_onnx"] <= TOLERANCE)
    if not ok:
        print(f"PARITY FAILED: CLI {p_cli} vs torch {p_torch} / onnx {p_onnx} (tolerance {TOLERANCE})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
