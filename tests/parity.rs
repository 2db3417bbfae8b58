//! Numerical parity with PyTorch / torchvision / pytorch-grad-cam on golden fixtures made by
//! tests/fixtures/make_fixtures.py. Tolerances: probabilities 1e-5, Grad-CAM maps 1e-4 (after
//! pytorch-grad-cam's normalisation), preprocessing 1e-6.

mod common;

use burn::prelude::*;
use common::fixtures::{floats_f32, golden, golden_layout};
use common::float::max_diff;
use pneumoscope::card::Normalisation;
use pneumoscope::gradcam;
use pneumoscope::model::{DenseNet, DenseNetConfig, probabilities};
use pneumoscope::weights::import::import_torchvision;
use pneumoscope::{decode, preprocess};
use std::path::Path;

fn load(file: &str, outputs: usize, device: &Device) -> DenseNet {
    let (model, report) =
        import_torchvision(Path::new(file), &DenseNetConfig::tiny(outputs), device).unwrap();
    assert!(!report.fresh_classifier);
    model
}

/// Checks probabilities and Grad-CAM maps of `model` against the golden entry `name`.
fn check(model: &DenseNet, name: &str, device: &Device) {
    let g = golden();
    let expected = &g.models[name];
    let features = model.forward_features(g.input_tensor(device));
    let probs: Vec<f32> = probabilities(model.head(features.clone()))
        .into_data()
        .try_to_vec()
        .unwrap();
    let probs = golden_layout(probs, model.num_outputs());
    let dp = max_diff(&probs, &g.probabilities(name));
    assert!(dp <= 1e-5, "{name}: max |Δprob| = {dp}");

    let class = expected["cam_class"].as_u64().unwrap() as usize;
    let [batch, _, h, w] = features.dims();
    let raw: Vec<f32> = gradcam::raw_maps(
        features.clone(),
        model.logit_gradient(model.pool(features), class),
    )
    .into_data()
    .try_to_vec()
    .unwrap();
    let size = g.shape[2];
    let cams: Vec<f32> = raw
        .chunks(h * w)
        .flat_map(|m| gradcam::finish(m, (w, h), size).values)
        .collect();
    assert_eq!(cams.len(), batch * size * size);
    let dc = max_diff(&cams, &floats_f32(&expected["cams"]));
    assert!(dc <= 1e-4, "{name}: max |ΔGrad-CAM| = {dc}");
}

#[test]
fn binary_model_matches_pytorch_and_grad_cam() {
    let device = Device::flex();
    check(
        &load("tests/fixtures/tiny_binary.pth", 1, &device),
        "tiny_binary",
        &device,
    );
}

#[test]
fn legacy_checkpoint_keys_and_format_import() {
    let device = Device::flex();
    check(
        &load("tests/fixtures/tiny_binary_legacy.pth", 1, &device),
        "tiny_binary",
        &device,
    );
}

#[test]
fn three_class_softmax_model_matches_pytorch() {
    let device = Device::flex();
    check(
        &load("tests/fixtures/tiny_3class.pth", 3, &device),
        "tiny_3class",
        &device,
    );
}

#[test]
fn preprocessing_matches_torchvision_normalisation() {
    let g = golden();
    let bytes = std::fs::read("tests/data/xray_64.png").unwrap();
    let image = decode::image_from_bytes(&bytes).unwrap();
    let ours = preprocess::pixels_chw(&image, 64, &Normalisation::imagenet());
    let theirs = &g.input[..3 * 64 * 64];
    assert!(max_diff(&ours, theirs) <= 1e-6);
}

#[test]
fn wrong_checkpoint_names_the_mismatched_keys() {
    let device = Device::flex();
    let other = DenseNetConfig::tiny(1).with_block_config(vec![2, 3]);
    let err = import_torchvision(Path::new("tests/fixtures/tiny_binary.pth"), &other, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing") && err.contains("layers.2"), "{err}");
    let err = import_torchvision(
        Path::new("tests/data/xray_64.png"),
        &DenseNetConfig::tiny(1),
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("checkpoint"), "{err}");
}

/// A head of another size (ImageNet's 1000 classes) is replaced, everything else loads.
#[test]
fn mismatched_head_is_reinitialised_for_transfer_learning() {
    let device = Device::flex();
    let (_, report) = import_torchvision(
        Path::new("tests/fixtures/tiny_3class.pth"),
        &DenseNetConfig::tiny(1),
        &device,
    )
    .unwrap();
    assert!(report.fresh_classifier);
}
