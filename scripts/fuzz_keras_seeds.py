"""Small seeds for the keras_model fuzz target (docs/fuzzing.md).

The Keras fixtures (tests/fixtures/keras) are 0.2-1 MB each, nearly all of it DenseNet weights, so
the target runs at ~120 executions a second and most mutations land in float data. This rewrites
each fixture with the same layers, names and config but the narrowest DenseNet whose shapes still
fit together (4 stem channels, growth 2, bottleneck 4: the importer reads widths from the weights,
never from the config), so a seed is tens of kB and the parser's paths are the same.

Needs h5py and numpy (PyPI) only:

    python3 -m venv /work/venvs/h5 && /work/venvs/h5/bin/pip install h5py
    /work/venvs/h5/bin/python scripts/fuzz_keras_seeds.py runs/fuzz/seeds/keras_model
"""
import io
import json
import os
import re
import sys
import zipfile

import h5py
import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "keras")
STEM, GROWTH, BOTTLENECK = 4, 2, 4
HEAD = 4  # the widest a head Dense layer stays
BLOCK = re.compile(r"conv(\d)_block(\d+)_(\d)_(bn|conv)$")
POOL = re.compile(r"pool(\d)_(bn|conv)$")


def widths(names):
    """Channels each DenseNet layer sees, by layer name, for the block counts the names show."""
    blocks = {}
    for name in names:
        m = BLOCK.match(name)
        if m:
            blocks[int(m[1])] = max(blocks.get(int(m[1]), 0), int(m[2]))
    width, seen = {"conv1_conv": (3, STEM), "conv1_bn": STEM}, STEM
    for stage in sorted(blocks):
        for i in range(1, blocks[stage] + 1):
            width[f"conv{stage}_block{i}_0_bn"] = seen
            width[f"conv{stage}_block{i}_1_conv"] = (seen, BOTTLENECK)
            width[f"conv{stage}_block{i}_1_bn"] = BOTTLENECK
            width[f"conv{stage}_block{i}_2_conv"] = (BOTTLENECK, GROWTH)
            seen += GROWTH
        if stage < max(blocks):
            width[f"pool{stage}_bn"] = seen
            width[f"pool{stage}_conv"] = (seen, seen // 2)
            seen //= 2
    width["bn"] = seen
    return width, seen


def shrink(shape, layer, width, features, dense_inputs):
    """The narrow shape of one weight, or the old one for layers outside the backbone (by rank:
    .keras files name variables 0, 1, ... instead of kernel, bias)."""
    if layer in width:
        w = width[layer]
        if isinstance(w, tuple):
            return shape[:-2] + w
        return (w,)
    if len(shape) == 2:  # a head Dense: its input is the last width
        inputs = dense_inputs.get(layer, features)
        return (inputs, min(shape[1], HEAD))
    if len(shape) == 1:
        return (min(shape[0], HEAD),)
    return shape


def snake_case(name):
    """Keras' naming.to_snake_case, which names a layer's group in a .keras weights file."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def saved_paths(model, prefix="layers"):
    """A .keras config's layers by the path of their weights (class names, counted per model)."""
    paths, used = {}, {}
    for member in model["config"]["layers"]:
        base = snake_case(member["class_name"])
        saved = base if base not in used else f"{base}_{used[base]}"
        used[base] = used.get(base, 0) + 1
        if isinstance(member["config"].get("layers"), list):
            paths.update(saved_paths(member, f"{prefix}/{saved}/layers"))
        else:
            paths[f"{prefix}/{saved}"] = member["config"]["name"]
    return paths


def layer_of(path, saved=None):
    """The Keras layer a weight belongs to, from its HDF5 path (.h5 and .keras layouts)."""
    if saved is not None:
        return saved.get(path.rsplit("/vars", 1)[0], path)
    parts = [p for p in path.split("/") if p not in ("vars", "layers", "model_weights")]
    for p in reversed(parts[:-1]):
        if BLOCK.match(p) or POOL.match(p) or p in ("conv1_conv", "conv1_bn", "bn"):
            return p
    return parts[-2] if len(parts) >= 2 else "".join(parts)


def rewrite(src, dst, saved=None):
    """Copies an HDF5 file with every float dataset narrowed (`saved`: a .keras file's layer
    names by weight path)."""
    names = []
    src.visit(lambda p: names.append(p.split("/")))
    width, features = widths(set(saved.values()) if saved else {p for path in names for p in path})
    # Head Dense layers chain: the first reads the backbone's features, the next its outputs.
    dense_inputs, inputs = {}, features
    for path in sorted("/".join(n) for n in names):
        layer = layer_of(path, saved)
        if layer not in width and isinstance(src[path], h5py.Dataset) and len(src[path].shape) == 2:
            dense_inputs[layer], inputs = inputs, min(src[path].shape[1], HEAD)
    rng = np.random.default_rng(7)

    def copy(name, obj):
        if isinstance(obj, h5py.Group):
            group = dst.require_group(name)
            group.attrs.update(obj.attrs)
            return
        shape = obj.shape
        if obj.dtype.kind == "f" and shape:
            shape = shrink(shape, layer_of(name, saved), width, features, dense_inputs)
            data = rng.uniform(0.5, 1.5, shape).astype(obj.dtype)
        else:
            data = obj[()]
        dst.create_dataset(name, data=data).attrs.update(obj.attrs)

    dst.attrs.update(src.attrs)
    src.visititems(copy)


def small_h5(path, saved=None):
    out = io.BytesIO()
    with h5py.File(path, "r") as src, h5py.File(out, "w", libver="latest") as dst:
        rewrite(src, dst, saved)
    return out.getvalue()


def small_keras(path):
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        saved = saved_paths(json.loads(src.read("config.json")))
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".h5"):
                data = small_h5(io.BytesIO(data), saved)
            dst.writestr(info.filename, data)
    return out.getvalue()


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name in sorted(os.listdir(FIXTURES)):
        path = os.path.join(FIXTURES, name)
        if name.endswith(".h5"):
            data = small_h5(path)
        elif name.endswith(".keras"):
            data = small_keras(path)
        else:
            continue
        with open(os.path.join(out_dir, "small-" + name), "wb") as f:
            f.write(data)
        print(f"{name}: {os.path.getsize(path):,} -> {len(data):,} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/fuzz/seeds/keras_model")
