//! Imports a torchvision DenseNet state dict (`.pth`), including the official ImageNet
//! checkpoint with its legacy `norm.1` / `conv.2` keys, into our module.
//!
//! A classifier whose shape differs from ours (ImageNet's 1000 classes vs our N) is left at its
//! fresh initialisation: that is transfer learning, and the report says so.

use super::{WeightsError, describe_mismatch};
use crate::model::{DenseNet, DenseNetConfig};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore};
use std::path::Path;

/// What the import did, for the CLI to print.
#[derive(Debug)]
pub struct ImportReport {
    pub tensors_loaded: usize,
    /// True when the checkpoint's classifier did not fit and a fresh head was kept.
    pub fresh_classifier: bool,
}

fn store(path: &Path) -> PytorchStore {
    PytorchStore::from_file(path)
        // torchvision's own fix-up for the 2017 checkpoints: `norm.1.weight` → `norm1.weight`.
        .with_key_remapping(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.", "$1$2.")
        // torchvision's `denseblockN.denselayerM` / `transitionN` → our lists (renumbered from 0).
        .with_key_remapping(
            r"features\.denseblock(\d+)\.denselayer(\d+)\.",
            "features.blocks.$1.layers.$2.",
        )
        .with_key_remapping(r"features\.transition(\d+)\.", "features.transitions.$1.")
        .allow_partial(true)
        .validate(false)
}

pub fn import_torchvision(
    path: &Path,
    config: &DenseNetConfig,
    device: &Device,
) -> Result<(DenseNet, ImportReport), WeightsError> {
    let mut store = store(path);
    let mut tensors: Vec<_> = store
        .get_all_tensors()
        .map_err(|e| WeightsError::Checkpoint(e.to_string()))?
        .values()
        .cloned()
        .collect();
    let head_shape = [config.num_outputs, config.num_features()];
    let head_fits = tensors
        .iter()
        .find(|t| t.name == "classifier.weight")
        .is_some_and(|t| t.shape.to_vec() == head_shape);
    if !head_fits {
        tensors.retain(|t| !t.name.starts_with("classifier."));
    }
    let mut model = config.init(device);
    let result = model.apply(tensors, None, Some(Box::new(PyTorchToBurnAdapter)), true);
    if let Some(details) =
        describe_mismatch(&result, |p| !head_fits && p.starts_with("classifier."))
    {
        return Err(WeightsError::Mismatch(details));
    }
    Ok((
        model,
        ImportReport {
            tensors_loaded: result.applied.len(),
            fresh_classifier: !head_fits,
        },
    ))
}
