//! Inference speed of our library on the CPU (burn flex backend), with the shipped weights.
//! One of the pieces of `scripts/bench.sh`, which runs the PyTorch peer on the same weights in
//! the same run and prints the table; alone:
//!
//!   cargo bench --bench inference [-- --sizes 224,128 --batches 1,16 --runs 5 --pipeline --xray FILE]
//!
//! `--xray` defaults to `$PNEUMOSCOPE_DATA/test/PNEUMONIA/person1_virus_6.jpeg`
//! (`PNEUMOSCOPE_DATA` by default `../shared/data/chest_xray`).
//!
//! With `--peer "python benches/torch_infer.py --serve …"` the PyTorch peer runs as a child
//! process and each of our timed calls is paired with one of its calls (alternating who goes
//! first) and one matmul (`--matmul N`, the machine's rate at that moment), so that on a shared,
//! noisy machine both sides see the same load; `pair_forward` gives the median of the per-pair
//! ratios (ours / peer, in time).
//!
//! Prints one JSON line per measurement (seconds per call: median, min, max over `--runs` calls
//! after one warm-up call):
//!   kind=forward   forward + probabilities + read back, a `[B, 3, S, S]` batch (random input)
//!   kind=gradcam   the closed-form Grad-CAM alone (raw maps, read back, normalise, upsample) at
//!                  batch 1, i.e. its extra cost over the forward, timed inside the same calls
//!   kind=pipeline  (with --pipeline) `Pipeline::analyse` on a real X-ray's bytes at the card's size: decode +
//!                  resize + forward + Grad-CAM, what `pneumoscope predict` does per file
//! Thread count: rayon's (set RAYON_NUM_THREADS; scripts/bench.sh uses 2).

/// The CLI's allocator (src/bin/pneumoscope/main.rs), so that the figures are the CLI's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the data set is, as the tests find it: `$PNEUMOSCOPE_DATA` or its default.
#[path = "../tests/common/data.rs"]
#[allow(dead_code)]
mod data;

use burn::prelude::*;
use pneumoscope::gradcam;
use pneumoscope::model::probabilities;
use pneumoscope::predict::Pipeline;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn list(name: &str, default: &str) -> Vec<usize> {
    arg(name, default)
        .split(',')
        .map(|s| s.trim().parse().expect("a number"))
        .collect()
}

/// CPU time used so far by all threads of this process (ns precision, from the scheduler's
/// per-thread accounting), so that a shared machine's preemption can be told from our own cost.
fn cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

fn stats(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    json!({ "median_s": v[v.len() / 2], "min_s": v[0], "max_s": v[v.len() - 1], "runs": v.len() })
}

fn merge(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// The PyTorch peer as a child process answering one timed call per request (torch_infer.py --serve).
struct Peer {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Peer {
    fn spawn(command: &str) -> Option<Self> {
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .args(["-c", command])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let out = std::io::BufReader::new(child.stdout.take()?);
        let mut peer = Self { child, out };
        let hello = peer.read()?;
        eprintln!("peer: {hello}");
        Some(peer)
    }

    fn read(&mut self) -> Option<serde_json::Value> {
        use std::io::BufRead;
        let mut line = String::new();
        self.out.read_line(&mut line).ok()?;
        serde_json::from_str(&line).ok()
    }

    fn call(&mut self, request: &str) -> serde_json::Value {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("peer stdin");
        writeln!(stdin, "{request}")
            .and_then(|_| stdin.flush())
            .expect("peer alive");
        self.read()
            .unwrap_or_else(|| panic!("peer gave no answer to {request}"))
    }

    fn seconds(&mut self, request: &str, field: &str) -> f64 {
        self.call(request)[field]
            .as_f64()
            .unwrap_or_else(|| panic!("peer: no {field} for {request}"))
    }
}

impl Drop for Peer {
    /// Closing its stdin ends the peer's loop; wait for it so no process outlives the bench.
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn median_of_ratios(a: &[f64], b: &[f64]) -> serde_json::Value {
    let mut r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    r.sort_by(f64::total_cmp);
    json!({ "ratio_median": r[r.len() / 2], "ratio_min": r[0], "ratio_max": r[r.len() - 1] })
}

fn main() {
    pneumoscope::allocator::keep_freed_pages();
    let sizes = list("--sizes", "224,128");
    let batches = list("--batches", "1,16");
    let runs: usize = arg("--runs", "5").parse().expect("runs");
    let card = arg("--card", "weights/model-card.json");
    let xray = arg(
        "--xray",
        &data::test_data_dir()
            .join("PNEUMONIA/person1_virus_6.jpeg")
            .display()
            .to_string(),
    );
    let matmul: usize = arg("--matmul", "2048").parse().expect("matmul size");
    let threads = rayon::current_num_threads();
    let device = Device::flex();
    let pipeline =
        Pipeline::from_card_file(Path::new(&card), &device).expect("loading the shipped weights");
    let model = &pipeline.model;
    let mut peer = std::env::args()
        .position(|a| a == "--peer")
        .map(|_| arg("--peer", ""))
        .and_then(|c| {
            let p = Peer::spawn(&c);
            if p.is_none() {
                eprintln!("the peer command failed to start: {c}");
            }
            p
        });
    let emit = |record: serde_json::Value| {
        println!(
            "{}",
            merge(
                json!({ "impl": "ours", "backend": "burn 0.22.1 flex (CPU)", "threads": threads }),
                record
            )
        );
    };
    let emit_peer = |record: serde_json::Value| {
        println!(
            "{}",
            merge(json!({ "impl": "pytorch", "threads": threads }), record)
        );
    };

    // (wall seconds, CPU seconds) of one forward.
    let ours_forward = |x: &Tensor<4>, batch: usize| {
        let (t, c) = (Instant::now(), cpu_seconds());
        let p: Vec<f32> = probabilities(model.forward(x.clone()))
            .into_data()
            .try_to_vec()
            .expect("f32");
        assert_eq!(p.len(), 2 * batch);
        (t.elapsed().as_secs_f64(), cpu_seconds() - c)
    };
    for &size in &sizes {
        for &batch in &batches {
            let x = Tensor::<4>::random(
                [batch, 3, size, size],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            let request = format!("forward {size} {batch}");
            // Warm-up, both sides.
            ours_forward(&x, batch);
            if let Some(p) = peer.as_mut() {
                p.seconds(&request, "s");
            }
            // Timed runs, interleaved (alternating who goes first) so both see the same load;
            // with the peer, one matmul per run measures what the machine gives at that moment.
            let (mut ours, mut theirs, mut mm) = (Vec::new(), Vec::new(), Vec::new());
            let (mut ours_cpu, mut theirs_cpu) = (Vec::new(), Vec::new());
            for i in 0..runs {
                let mut peer_call = |p: &mut Peer| {
                    let r = p.call(&request);
                    theirs.push(r["s"].as_f64().expect("peer seconds"));
                    theirs_cpu.push(r["cpu_s"].as_f64().unwrap_or(f64::NAN));
                };
                let first = peer.is_some() && i % 2 == 1;
                if first {
                    peer_call(peer.as_mut().unwrap());
                }
                let (wall, cpu) = ours_forward(&x, batch);
                ours.push(wall);
                ours_cpu.push(cpu);
                if !first && let Some(p) = peer.as_mut() {
                    peer_call(p);
                }
                if let (Some(p), true) = (peer.as_mut(), matmul > 0) {
                    let flop = 2.0 * (matmul as f64).powi(3);
                    mm.push(flop / p.seconds(&format!("matmul {matmul}"), "s") / 1e9);
                }
            }
            emit(merge(
                json!({ "kind": "forward", "size": size, "batch": batch, "cpu": stats(ours_cpu.clone()) }),
                stats(ours.clone()),
            ));
            if !theirs.is_empty() {
                emit_peer(merge(
                    json!({ "kind": "forward", "size": size, "batch": batch, "cpu": stats(theirs_cpu.clone()) }),
                    stats(theirs.clone()),
                ));
                let cpu_ratio = median_of_ratios(&ours_cpu, &theirs_cpu);
                let mut pair = merge(
                    json!({ "kind": "pair_forward", "size": size, "batch": batch, "cpu": cpu_ratio }),
                    median_of_ratios(&ours, &theirs),
                );
                if !mm.is_empty() {
                    mm.sort_by(f64::total_cmp);
                    pair = merge(
                        pair,
                        json!({ "matmul_n": matmul, "matmul_gflops_median": mm[mm.len() / 2], "matmul_gflops_min": mm[0], "matmul_gflops_max": mm[mm.len() - 1] }),
                    );
                }
                println!("{pair}");
            }
        }
        // Grad-CAM's extra cost: everything after the probabilities are read, as in predict.rs;
        // the peer's is its GradCAM call minus a plain forward, timed back to back.
        let x = Tensor::<4>::random(
            [1, 3, size, size],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let (mut cam_times, mut peer_extra, mut peer_call) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..=runs {
            let features = model.forward_features(x.clone());
            let _: Vec<f32> = probabilities(model.head(features.clone()))
                .into_data()
                .try_to_vec()
                .expect("f32");
            let t = Instant::now();
            let [_, _, h, w] = features.dims();
            let raw: Vec<f32> = gradcam::raw_maps(
                features.clone(),
                model.logit_gradient(model.pool(features), 0),
            )
            .into_data()
            .try_to_vec()
            .expect("f32");
            let cam = gradcam::finish(&raw, (w, h), size);
            assert_eq!(cam.values.len(), size * size);
            let elapsed = t.elapsed().as_secs_f64();
            let theirs = peer.as_mut().map(|p| p.call(&format!("gradcam {size}")));
            if i > 0 {
                cam_times.push(elapsed);
                if let Some(r) = theirs {
                    let (f, g) = (
                        r["forward_s"].as_f64().unwrap_or(f64::NAN),
                        r["gradcam_s"].as_f64().unwrap_or(f64::NAN),
                    );
                    peer_extra.push(g - f);
                    peer_call.push(g);
                }
            }
        }
        emit(merge(
            json!({ "kind": "gradcam", "size": size, "batch": 1 }),
            stats(cam_times),
        ));
        if !peer_extra.is_empty() {
            emit_peer(merge(
                json!({ "kind": "gradcam_extra", "size": size, "batch": 1, "call": stats(peer_call) }),
                stats(peer_extra),
            ));
        }
    }

    // The whole per-file path of the CLI, at the card's input size, on a real X-ray.
    if !std::env::args().any(|a| a == "--pipeline") {
        return;
    }
    if let Ok(bytes) = std::fs::read(&xray) {
        let mut times = Vec::new();
        for i in 0..=runs {
            let t = Instant::now();
            pipeline
                .analyse_blocking(&bytes)
                .expect("analysing the X-ray");
            if i > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        emit(merge(
            json!({ "kind": "pipeline", "size": pipeline.card.input_size, "batch": 1, "file": xray }),
            stats(times),
        ));
    } else {
        eprintln!("no X-ray at {xray}: skipping the pipeline measurement");
    }
}
