//! Inference speed of our library on the CPU (burn flex backend), with the shipped weights.
//! One of the pieces of `scripts/bench.sh`, which runs the PyTorch peer on the same weights in
//! the same run and prints the table; alone:
//!
//!   cargo bench --bench inference [-- --sizes 224,128 --batches 1,16 --runs 5 --pipeline --xray FILE]
//!
//! Prints one JSON line per measurement (seconds per call: median, min, max over `--runs` calls
//! after one warm-up call):
//!   kind=forward   forward + probabilities + read back, a `[B, 3, S, S]` batch (random input)
//!   kind=gradcam   the closed-form Grad-CAM alone (raw maps, read back, normalise, upsample) at
//!                  batch 1, i.e. its extra cost over the forward, timed inside the same calls
//!   kind=pipeline  (with --pipeline) `Pipeline::analyse` on a real X-ray's bytes at the card's size: decode +
//!                  resize + forward + Grad-CAM, what `pneumoscope predict` does per file
//! Thread count: rayon's (set RAYON_NUM_THREADS; scripts/bench.sh uses 2).

use burn::prelude::*;
use pneumoscope::gradcam;
use pneumoscope::model::probabilities;
use pneumoscope::predict::Pipeline;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
}

fn list(name: &str, default: &str) -> Vec<usize> {
    arg(name, default).split(',').map(|s| s.trim().parse().expect("a number")).collect()
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

fn main() {
    let sizes = list("--sizes", "224,128");
    let batches = list("--batches", "1,16");
    let runs: usize = arg("--runs", "5").parse().expect("runs");
    let card = arg("--card", "weights/model-card.json");
    let xray = arg("--xray", "../shared/data/chest_xray/test/PNEUMONIA/person1_virus_6.jpeg");
    let threads = rayon::current_num_threads();
    let device = Device::flex();
    let pipeline = Pipeline::from_card_file(Path::new(&card), &device).expect("loading the shipped weights");
    let model = &pipeline.model;
    let emit = |record: serde_json::Value| {
        println!("{}", merge(json!({ "impl": "ours", "backend": "burn 0.22.1 flex (CPU)", "threads": threads }), record));
    };

    for &size in &sizes {
        for &batch in &batches {
            let x = Tensor::<4>::random([batch, 3, size, size], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
            let mut times = Vec::new();
            for i in 0..=runs {
                let t = Instant::now();
                let p: Vec<f32> = probabilities(model.forward(x.clone())).into_data().try_to_vec().expect("f32");
                assert_eq!(p.len(), 2 * batch);
                if i > 0 {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
            emit(merge(json!({ "kind": "forward", "size": size, "batch": batch }), stats(times)));
        }
        // Grad-CAM's extra cost: everything after the probabilities are read, as in predict.rs.
        let x = Tensor::<4>::random([1, 3, size, size], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let mut cam_times = Vec::new();
        for i in 0..=runs {
            let features = model.forward_features(x.clone());
            let _: Vec<f32> = probabilities(model.head(features.clone())).into_data().try_to_vec().expect("f32");
            let t = Instant::now();
            let [_, _, h, w] = features.dims();
            let raw: Vec<f32> = gradcam::raw_maps(features, model.classifier.weight.val(), 0).into_data().try_to_vec().expect("f32");
            let cam = gradcam::finish(&raw, (w, h), size);
            assert_eq!(cam.values.len(), size * size);
            if i > 0 {
                cam_times.push(t.elapsed().as_secs_f64());
            }
        }
        emit(merge(json!({ "kind": "gradcam", "size": size, "batch": 1 }), stats(cam_times)));
    }

    // The whole per-file path of the CLI, at the card's input size, on a real X-ray.
    if !std::env::args().any(|a| a == "--pipeline") {
        return;
    }
    if let Ok(bytes) = std::fs::read(&xray) {
        let mut times = Vec::new();
        for i in 0..=runs {
            let t = Instant::now();
            pipeline.analyse_blocking(&bytes).expect("analysing the X-ray");
            if i > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        emit(merge(json!({ "kind": "pipeline", "size": pipeline.card.input_size, "batch": 1, "file": xray }), stats(times)));
    } else {
        eprintln!("no X-ray at {xray}: skipping the pipeline measurement");
    }
}
