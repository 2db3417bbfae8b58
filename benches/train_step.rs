//! Training throughput: burn (flex CPU backend, and LibTorch when built with `--features
//! libtorch`) vs PyTorch CPU, same DenseNet121 step (forward + backward + Adam, batch 16, random
//! data), measured in the same run.
//!
//!   cargo bench --bench train_step [-- --sizes 224,128 --batch 16 --steps 3 --backend flex,flex-generic,libtorch]
//!
//! Prints images/s for each backend and PyTorch, and the ratio (ours / PyTorch; ≥ 1.0 means we
//! are faster). `flex-generic` is flex with our training kernels switched off (burn's generic
//! ops: the "before" row). `--backend` defaults to every backend this build has, plus
//! flex-generic. PyTorch is the `python3` on PATH (`pip install torch torchvision`); without it
//! only our rows print.

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use clap::ValueEnum;
use pneumoscope::model::{DenseNetConfig, flex_training};
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

/// A row of the table: a backend, and for flex whether our training kernels are on.
#[derive(Clone, Copy)]
struct Row {
    backend: TrainBackend,
    kernels: bool,
}

impl Row {
    fn parse(name: &str) -> Row {
        match name {
            "flex-generic" => Row {
                backend: TrainBackend::Flex,
                kernels: false,
            },
            other => Row {
                backend: TrainBackend::from_str(other, true)
                    .expect("backend: flex, flex-generic, libtorch or wgpu"),
                kernels: true,
            },
        }
    }
    fn name(&self) -> String {
        match (self.backend, self.kernels) {
            (TrainBackend::Flex, false) => "flex-generic".into(),
            (backend, _) => format!("{backend:?}").to_lowercase(),
        }
    }
}

fn ours(row: Row, size: usize, batch: usize, steps: usize) -> (f64, f64, f64) {
    flex_training::set_enabled(row.kernels);
    let device = row.backend.device().expect("backend").autodiff();
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
        let tf = t.elapsed().as_secs_f64();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let tb = t.elapsed().as_secs_f64();
        model = optim.step(1e-3, model, grads);
        let _ = model.classifier.weight.val().into_data(); // wait for the step to finish
        eprintln!("PROBE forward {tf:.3} backward {:.3} optim {:.3}", tb - tf, t.elapsed().as_secs_f64() - tb);
        let names = ["xgrad3", "xgrad1", "wgrad3", "wgrad1", "bn-bwd", "conv-fwd", "bn-fwd", "-"];
        eprintln!("PROBE {}", names.iter().zip(&flex_training::backward::T).map(|(n, t)| format!("{n} {:.3}", t.swap(0, std::sync::atomic::Ordering::Relaxed) as f64 / 1e9)).collect::<Vec<_>>().join(" "));
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
    let steps: usize = arg("--steps", "3").parse().expect("steps");
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut all: Vec<String> = TrainBackend::cpu_backends()
        .iter()
        .map(|b| format!("{b:?}").to_lowercase())
        .collect();
    all.insert(1, "flex-generic".into());
    let backends: Vec<Row> = arg("--backend", &all.join(","))
        .split(',')
        .map(Row::parse)
        .collect();
    for b in &backends {
        if let Err(e) = b.backend.device() {
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
        for &row in &backends {
            let (med, min, max) = ours(row, size, batch, steps);
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
            let name = row.name();
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
