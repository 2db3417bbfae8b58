"""PyTorch peer for benches/train_step.rs: torchvision DenseNet121 (1 output), one training step
(forward + backward + Adam) on random data. Prints one JSON line per size."""
import argparse, json, os, time
import torch, torchvision

p = argparse.ArgumentParser()
p.add_argument("--sizes", default="224,128")
p.add_argument("--batch", type=int, default=16)
p.add_argument("--steps", type=int, default=3)
p.add_argument("--threads", type=int, default=os.cpu_count())
a = p.parse_args()
torch.set_num_threads(a.threads)
model = torchvision.models.densenet121(num_classes=1).train()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = torch.nn.BCEWithLogitsLoss()
for size in [int(s) for s in a.sizes.split(",")]:
    x = torch.randn(a.batch, 3, size, size)
    y = torch.randint(0, 2, (a.batch, 1)).float()
    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    step()  # warm-up
    times = []
    for _ in range(a.steps):
        t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"size": size, "batch": a.batch, "threads": a.threads, "median_s": med,
                      "min_s": times[0], "max_s": times[-1], "images_per_second": a.batch / med,
                      "torch": torch.__version__}), flush=True)
