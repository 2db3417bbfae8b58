//! Helpers shared by the integration tests: where the data set is (`data`), the JSON references
//! (`fixtures`), float comparisons (`float`), skipping a test whose prerequisite is missing
//! (`skip`), and one training step's gradients (below), for the backend parity tests.
#![allow(dead_code)] // each test file uses its own subset

pub mod data;
pub mod fixtures;
pub mod float;
pub mod skip;

use burn::optim::GradientsParams;
use burn::prelude::*;
use pneumoscope::model::DenseNetConfig;
use pneumoscope::train::loss::classification_loss;
use pneumoscope::weights::import::import_torchvision;
use std::path::Path;

/// Gradients of the training loss (the tiny model, batch of 2, one image of each class,
/// unweighted): what a training step sees.
pub fn gradients(device: &Device) -> Vec<f32> {
    let device = device.clone().autodiff();
    let (model, _) = import_torchvision(
        Path::new("tests/fixtures/tiny_binary.pth"),
        &DenseNetConfig::tiny(1),
        &device,
    )
    .unwrap();
    let pixels: Vec<f32> = (0..2 * 3 * 64 * 64)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let images = Tensor::<4>::from_data(TensorData::new(pixels, [2, 3, 64, 64]), &device);
    let loss = classification_loss(model.forward(images), &[0, 1], &[1.0, 1.0], &device);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let gradient = grads
        .get::<2>(model.classifier.weight.id)
        .expect("classifier gradient");
    gradient.into_data().try_to_vec().unwrap()
}

/// One training step's classifier gradient on `device` equals flex's, within 1e-4 of its
/// largest value.
pub fn assert_same_training_gradients(device: &Device) {
    let reference = gradients(&Device::flex());
    let other = gradients(device);
    let scale = float::max_abs(&reference);
    let worst = float::max_diff(&reference, &other);
    eprintln!("classifier gradient: max |Δ| {worst:.2e} (max |g| {scale:.2e})");
    assert!(worst <= 1e-4 * scale.max(1.0), "max |Δgrad| = {worst}");
}
