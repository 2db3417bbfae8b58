//! Training throughput: burn's flex CPU backend with our training kernels (`flex`) and without
//! them (`flex-generic`, burn's generic ops: the "before") vs PyTorch CPU, the same DenseNet121
//! step (forward + backward + Adam, batch 16, random data), measured in the same run.
//!
//!   cargo bench --bench train_step [-- --sizes 224,128 --batch 16 --steps 5 --backend flex,flex-generic]
//!
//! Prints images/s for each backend and PyTorch, and the ratio (ours / PyTorch; ≥ 1.0 means we
//! are faster). PyTorch is the `python3` on PATH (`pip install torch torchvision`; scripts/bench.sh
//! has it in its venv); without it only our rows print.

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use clap::ValueEnum;
use pneumoscope::model::DenseNetConfig;
use pneumoscope::train::backend::TrainBackend;
use pneumoscope::train::loss::classification_loss;
use std::process::Command;
use std::time::Instant;

/// The CLI's allocator (src/bin/pneumoscope/main.rs), so that a step here costs what it costs in
/// `pneumoscope train`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn ours(backend: TrainBackend, size: usize, batch: usize, steps: usize) -> (f64, f64, f64) {
    let device = backend.device().expect("backend").autodiff();
    let mut model = DenseNetConfig::densenet121(1).init(&device);
    let mut optim = AdamConfig::new().init();
    let x = Tensor::<4>::random(
        [batch, 3, size, size],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    // Random labels, as PyTorch's peer draws them.
    let labels: Vec<usize> =
        Tensor::<1>::random([batch], burn::tensor::Distribution::Bernoulli(0.5), &device)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(|v| v as usize)
            .collect();
    let mut times = Vec::new();
    for i in 0..=steps {
        let t = Instant::now();
        let logits = model.forward(x.clone());
        // The training loss (unweighted: the mean binary cross-entropy, like BCEWithLogitsLoss).
        let loss = classification_loss(logits, &labels, &[1.0, 1.0], &device);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
        let _ = model.classifier.weight.val().into_data(); // wait for the step to finish
        if i > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    median(times)
}

fn main() {
    pneumoscope::allocator::keep_freed_pages();
    let sizes: Vec<usize> = arg("--sizes", "224,128")
        .split(',')
        .map(|s| s.parse().expect("size"))
        .collect();
    let batch: usize = arg("--batch", "16").parse().expect("batch");
    let steps: usize = arg("--steps", "5").parse().expect("steps");
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let backends: Vec<TrainBackend> = arg("--backend", "flex,flex-generic")
        .split(',')
        .map(|s| TrainBackend::from_str(s, true).expect("backend: flex, flex-generic or wgpu"))
        .collect();
    for b in &backends {
        if let Err(e) = b.device() {
            panic!("{e}");
        }
    }
    let torch = Command::new("python3")
        .args([
            "benches/torch_train_step.py",
            "--sizes",
            &arg("--sizes", "224,128"),
            "--batch",
            &batch.to_string(),
            "--steps",
            &steps.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .output();
    let torch_rows: Vec<serde_json::Value> = match &torch {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        _ => {
            eprintln!(
                "PyTorch peer unavailable (pip install torch torchvision): {:?}",
                torch
                    .as_ref()
                    .map(|o| String::from_utf8_lossy(&o.stderr).to_string())
            );
            vec![]
        }
    };
    println!(
        "DenseNet121 training step (forward+backward+Adam), batch {batch}, {threads} threads, median of {steps} after warm-up"
    );
    println!(
        "{:>6} | {:>12} | {:>22} | {:>22} | {:>8}",
        "size", "backend", "ours img/s (min–max s)", "PyTorch img/s (min–max s)", "ratio"
    );
    for size in sizes {
        let peer = torch_rows
            .iter()
            .find(|r| r["size"].as_u64() == Some(size as u64));
        for &backend in &backends {
            let (med, min, max) = ours(backend, size, batch, steps);
            let ours_ips = batch as f64 / med;
            let (peer_text, ratio) = match peer {
                Some(r) => {
                    let ips = r["images_per_second"].as_f64().unwrap_or(f64::NAN);
                    (
                        format!(
                            "{ips:.2} ({:.2}–{:.2})",
                            r["min_s"].as_f64().unwrap_or(0.0),
                            r["max_s"].as_f64().unwrap_or(0.0)
                        ),
                        format!("{:.2}×", ours_ips / ips),
                    )
                }
                None => ("n/a".into(), "n/a".into()),
            };
            let name = backend
                .to_possible_value()
                .expect("named")
                .get_name()
                .to_string();
            println!(
                "{size:>6} | {name:>12} | {:>22} | {:>22} | {:>8}",
                format!("{ours_ips:.2} ({min:.2}–{max:.2})"),
                peer_text,
                ratio
            );
        }
    }
    if let Some(r) = torch_rows.first() {
        println!("PyTorch {}", r["torch"].as_str().unwrap_or("?"));
    }
}
