"""PyTorch peer for benches/inference.rs: torchvision DenseNet121 with OUR weights (converted by
benches/convert_weights.py), CPU, eval mode, `torch.inference_mode()`.

  python benches/torch_infer.py --weights target/bench/densenet121.pth [--sizes 224,128]
         [--batches 1,16] [--runs 5] [--threads 2] [--gradcam] [--matmul 2048]

Prints one JSON line per measurement (seconds per call: median, min, max over --runs calls after
one warm-up call):
  kind=forward   forward + sigmoid of a [B, 3, S, S] batch
  kind=gradcam   pytorch-grad-cam GradCAM(target_layers=[model.features[-1]]) on one image
                 (its forward + backward + CAM + resize to the input size), batch 1
  kind=matmul    torch.matmul of two N×N f32 matrices (2·N³ FLOP), the machine's sustained rate
  kind=matmul_numpy  the same with numpy (its BLAS), for comparison

With --serve it instead answers one timed call per line on stdin, for benches/inference.rs to
interleave with its own calls (so both see the same load on a shared machine):
  forward S B   → {"s": seconds, "cpu_s": CPU seconds of all threads}
  gradcam S     → {"forward_s": …, "gradcam_s": …}  (a forward, then the GradCAM call, batch 1)
  matmul N      → {"s": seconds}                    (one N×N matmul)
"""
import argparse, json, os, time


def timed(fn, runs, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return {"median_s": times[len(times) // 2], "min_s": times[0], "max_s": times[-1], "runs": runs}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights", default="target/bench/densenet121.pth")
    p.add_argument("--sizes", default="224,128")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gradcam", action="store_true")
    p.add_argument("--matmul", type=int, default=0, help="matrix size for the FLOP/s floor (0: skip)")
    p.add_argument("--only-matmul", action="store_true")
    p.add_argument("--serve", action="store_true", help="answer timed calls on stdin (see above)")
    a = p.parse_args()
    import torch, torchvision
    torch.set_num_threads(a.threads)
    meta = {"impl": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads()}

    def emit(record):
        print(json.dumps({**meta, **record}), flush=True)

    if a.matmul:
        n = a.matmul
        x, y = torch.randn(n, n), torch.randn(n, n)
        emit({"kind": "matmul", "n": n, "flop": 2 * n ** 3, **timed(lambda: torch.matmul(x, y), max(a.runs, 5), warmup=2)})
        try:
            import numpy as np
            from threadpoolctl import threadpool_limits
            xn, yn = x.numpy(), y.numpy()
            with threadpool_limits(limits=a.threads):
                emit({"kind": "matmul_numpy", "n": n, "flop": 2 * n ** 3, "numpy": np.__version__,
                      **timed(lambda: xn @ yn, max(a.runs, 5), warmup=2)})
        except ImportError:
            pass
    if a.only_matmul:
        return

    model = torchvision.models.densenet121(num_classes=1)
    model.load_state_dict(torch.load(a.weights, weights_only=True))
    model.eval()
    gen = torch.Generator().manual_seed(0)
    if a.serve:
        return serve(model, gen, meta)
    for size in [int(s) for s in a.sizes.split(",")]:
        for batch in [int(b) for b in a.batches.split(",")]:
            x = torch.randn(batch, 3, size, size, generator=gen)

            def forward():
                with torch.inference_mode():
                    return torch.sigmoid(model(x)).tolist()

            emit({"kind": "forward", "size": size, "batch": batch, **timed(forward, a.runs)})
        if a.gradcam:
            from pytorch_grad_cam import GradCAM
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
            from importlib.metadata import version
            x = torch.randn(1, 3, size, size, generator=gen)
            cam = GradCAM(model=model, target_layers=[model.features[-1]])
            targets = [ClassifierOutputTarget(0)]
            emit({"kind": "gradcam", "size": size, "batch": 1, "grad_cam": version("grad-cam"),
                  **timed(lambda: cam(input_tensor=x, targets=targets), a.runs)})


def serve(model, gen, meta):
    import sys, torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    inputs, cams, mats = {}, {}, {}

    def forward(x):
        with torch.inference_mode():
            return torch.sigmoid(model(x)).tolist()

    print(json.dumps({"ready": True, **meta}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "forward":
            size, batch = int(cmd[1]), int(cmd[2])
            x = inputs.setdefault((size, batch), torch.randn(batch, 3, size, size, generator=gen))
            c = time.process_time(); t = time.perf_counter(); forward(x)
            out = {"s": time.perf_counter() - t, "cpu_s": time.process_time() - c}
        elif cmd[0] == "gradcam":
            size = int(cmd[1])
            x = inputs.setdefault((size, 1), torch.randn(1, 3, size, size, generator=gen))
            cam = cams.setdefault(size, GradCAM(model=model, target_layers=[model.features[-1]]))
            t = time.perf_counter(); forward(x); f = time.perf_counter() - t
            t = time.perf_counter(); cam(input_tensor=x, targets=[ClassifierOutputTarget(0)]); g = time.perf_counter() - t
            out = {"forward_s": f, "gradcam_s": g}
        elif cmd[0] == "matmul":
            n = int(cmd[1])
            x, y = mats.setdefault(n, (torch.randn(n, n), torch.randn(n, n)))
            t = time.perf_counter(); torch.matmul(x, y); out = {"s": time.perf_counter() - t, "flop": 2 * n ** 3}
        else:
            out = {"error": f"unknown command {cmd[0]}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
