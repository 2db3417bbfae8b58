//! Helpers shared by the backend parity tests.
#![allow(dead_code)] // each test file uses its own subset

use burn::optim::GradientsParams;
use burn::prelude::*;
use pneumoscope::model::DenseNetConfig;
use pneumoscope::weights::import::import_torchvision;
use std::path::Path;

/// Gradients of the training loss (the tiny model, batch of 2): what a training step sees.
pub fn gradients(device: &Device) -> Vec<f32> {
    let device = device.clone().autodiff();
    let (model, _) = import_torchvision(
        Path::new("tests/fixtures/tiny_binary.pth"),
        &DenseNetConfig::tiny(1),
        &device,
    )
    .unwrap();
    let x: Vec<f32> = (0..2 * 3 * 64 * 64)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, [2, 3, 64, 64]), &device);
    let logits = model.forward(x);
    let y = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 1.0], [2, 1]), &device);
    let loss = (logits.clone().clamp_min(0.0) - logits.clone() * y
        + logits.abs().neg().exp().add_scalar(1.0).log())
    .mean();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let g = grads
        .get::<2>(model.classifier.weight.id)
        .expect("classifier gradient");
    g.into_data().try_to_vec().unwrap()
}

/// One training step's classifier gradient on `device` equals flex's, within 1e-4 of its
/// largest value.
pub fn assert_same_training_gradients(device: &Device) {
    let a = gradients(&Device::flex());
    let b = gradients(device);
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    eprintln!("classifier gradient: max |Δ| {d:.2e} (max |g| {scale:.2e})");
    assert!(d <= 1e-4 * scale.max(1.0), "max |Δgrad| = {d}");
}
