//! The same golden forward pass on burn's wgpu backend (in CI: Mesa's lavapipe Vulkan driver
//! on the CPU), so the GPU path is checked against PyTorch too. Probabilities within 1e-4; a
//! training step's gradient (`train --backend wgpu`) within 1e-4 of flex's.

mod common;

use burn::prelude::*;
use pneumoscope::model::{DenseNetConfig, probabilities};
use pneumoscope::weights::import::import_torchvision;
use serde_json::Value;
use std::path::Path;

#[test]
fn wgpu_forward_matches_pytorch() {
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/golden.json").unwrap())
            .unwrap();
    let floats = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect::<Vec<_>>()
    };
    let shape: Vec<usize> = golden["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let (model, _) = import_torchvision(
        Path::new("tests/fixtures/tiny_binary.pth"),
        &DenseNetConfig::tiny(1),
        &Device::flex(),
    )
    .unwrap();
    let device = Device::wgpu(Default::default());
    let model = model.to_device(&device);
    let input = Tensor::<4>::from_data(
        TensorData::new(
            floats(&golden["input"]),
            [shape[0], shape[1], shape[2], shape[3]],
        ),
        &device,
    );
    let probs: Vec<f32> = probabilities(model.forward(input))
        .into_data()
        .try_to_vec()
        .unwrap();
    let ours: Vec<f32> = probs.chunks(2).map(|p| p[1]).collect();
    let expected = floats(&golden["models"]["tiny_binary"]["probabilities"]);
    let diff = ours
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff <= 1e-4, "wgpu max |Δprob| = {diff}");
}

#[test]
fn wgpu_training_gradients_match_flex() {
    common::assert_same_training_gradients(
        &pneumoscope::train::backend::Backend::Wgpu.device().unwrap(),
    );
}
