//! The same golden forward pass on burn's wgpu backend (in CI: Mesa's lavapipe Vulkan driver
//! on the CPU), so the GPU path is checked against PyTorch too. Probabilities within 1e-4; a
//! training step's gradient (`train --backend wgpu`) within 1e-4 of flex's.
//!
//! Needs a wgpu adapter: a GPU, or a software driver (Mesa's lavapipe Vulkan, which
//! `scripts/setup.sh --test` installs, or Mesa's OpenGL). Without one both tests print
//! `skipped: …` to stderr and pass, except in CI (`CI=true`), where setup.sh has installed
//! lavapipe and a missing adapter fails them.

mod common;

use burn::prelude::*;
use common::fixtures::{golden, golden_layout};
use common::float::max_diff;
use pneumoscope::model::{DenseNetConfig, probabilities};
use pneumoscope::train::backend::TrainBackend;
use pneumoscope::weights::import::import_torchvision;
use std::path::Path;
use std::sync::OnceLock;

/// The wgpu device, or None (after saying why) when there is no adapter. Probed once per test
/// binary: the probe swaps the process-wide panic hook, which concurrent probes could leave
/// silenced.
fn wgpu_device() -> Option<Device> {
    static DEVICE: OnceLock<Result<Device, String>> = OnceLock::new();
    match DEVICE.get_or_init(|| TrainBackend::Wgpu.device().map_err(|e| e.to_string())) {
        Ok(device) => Some(device.clone()),
        Err(e) => {
            common::skip::missing_prerequisite(
                &format!("no wgpu adapter (the backend says: {e})"),
                "run it where wgpu finds one: a GPU, or Mesa's software drivers \
                 (`bash scripts/setup.sh --test` installs the lavapipe Vulkan driver)",
            );
            None
        }
    }
}

#[test]
fn wgpu_forward_matches_pytorch() {
    let Some(device) = wgpu_device() else { return };
    let golden = golden();
    let (model, _) = import_torchvision(
        Path::new("tests/fixtures/tiny_binary.pth"),
        &DenseNetConfig::tiny(1),
        &Device::flex(),
    )
    .unwrap();
    let model = model.to_device(&device);
    let probs: Vec<f32> = probabilities(model.forward(golden.input_tensor(&device)))
        .into_data()
        .try_to_vec()
        .unwrap();
    let ours = golden_layout(probs, 1);
    let diff = max_diff(&ours, &golden.probabilities("tiny_binary"));
    assert!(diff <= 1e-4, "wgpu max |Δprob| = {diff}");
}

#[test]
fn wgpu_training_gradients_match_flex() {
    let Some(device) = wgpu_device() else { return };
    common::assert_same_training_gradients(&device);
}
