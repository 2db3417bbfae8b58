//! LibTorch backend (cargo feature `libtorch`) against flex on the same weights: the shipped
//! DenseNet121 on real X-rays (probabilities within 1e-4), and one training step's gradients on
//! the tiny model. Runs only in a `--features libtorch` build (see the README).
#![cfg(feature = "libtorch")]

mod common;

use burn::prelude::*;
use common::float::max_diff;
use pneumoscope::predict::Pipeline;
use pneumoscope::train::backend::TrainBackend;
use std::path::Path;

/// In the test split (`common::data::test_data_dir()`).
const XRAYS: [&str; 4] = [
    "NORMAL/IM-0001-0001.jpeg",
    "NORMAL/IM-0003-0001.jpeg",
    "PNEUMONIA/person1_virus_6.jpeg",
    "PNEUMONIA/person3_virus_15.jpeg",
];

#[test]
fn shipped_model_gives_the_same_probabilities_on_libtorch() {
    let card = Path::new("weights/model-card.json");
    let flex = Pipeline::from_card_file(card, &Device::flex()).unwrap();
    let torch = Pipeline::from_card_file(card, &TrainBackend::Libtorch.device().unwrap()).unwrap();
    let (mut worst_p, mut worst_cam) = (0.0f32, 0.0f32);
    for file in XRAYS {
        let path = common::data::test_data_dir().join(file);
        let path = path.display().to_string();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let a = flex.analyse_blocking(&bytes).unwrap();
        let b = torch.analyse_blocking(&bytes).unwrap();
        let dp = max_diff(&a.probabilities, &b.probabilities);
        let dc = max_diff(&a.cam.values, &b.cam.values);
        eprintln!(
            "{path}: flex {:.6} libtorch {:.6} |Δp| {dp:.2e} |ΔGrad-CAM| {dc:.2e}",
            a.probability, b.probability
        );
        worst_p = worst_p.max(dp);
        worst_cam = worst_cam.max(dc);
    }
    eprintln!("max |Δprob| {worst_p:.2e}, max |ΔGrad-CAM| {worst_cam:.2e}");
    assert!(worst_p <= 1e-4, "max |Δprob| = {worst_p}");
    assert!(worst_cam <= 1e-3, "max |ΔGrad-CAM| = {worst_cam}");
}

#[test]
fn training_gradients_match_flex() {
    common::assert_same_training_gradients(&TrainBackend::Libtorch.device().unwrap());
}
