//! A training run's settings, saved as `config.json` in its folder (what `--resume` continues).
//! The defaults live here once: the CLI's flags and the tests start from them.

use super::augment::Augmentation;
use crate::model::DenseNetConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// ImageFolder root with `train/{CLASS}/…` (and optionally `val/`).
    pub data: PathBuf,
    pub out: PathBuf,
    /// Weights to start from: a torchvision DenseNet checkpoint (transfer learning, staged
    /// unfreezing) or one of our containers (warm start: every layer trains from the first epoch).
    pub init: Option<PathBuf>,
    pub model: DenseNetConfig,
    /// Model input side (the card's `input_size`); images are decoded once at this size.
    pub image_size: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub min_learning_rate: f64,
    pub plateau_patience: usize,
    pub plateau_factor: f64,
    pub early_stopping_patience: usize,
    pub val_fraction: f64,
    /// `DIR/val` is used only when it holds at least this many images.
    pub min_val_images: usize,
    pub seed: u64,
    pub augmentation: Augmentation,
    pub class_weights: bool,
    /// With `init`: epochs with the backbone frozen before the last dense blocks are unfrozen.
    pub frozen_epochs: usize,
    pub checkpoint_minutes: f64,
    /// Use at most this many training images (0 = all); for smoke tests.
    pub limit: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: PathBuf::new(),
            out: PathBuf::from("runs/densenet121"),
            init: None,
            model: DenseNetConfig::densenet121(1),
            image_size: 224,
            epochs: 30,
            batch_size: 16,
            learning_rate: 1e-3,
            min_learning_rate: 1e-6,
            plateau_patience: 2,
            plateau_factor: 0.3,
            early_stopping_patience: 5,
            val_fraction: 0.15,
            min_val_images: 200,
            seed: 42,
            augmentation: Augmentation::default(),
            class_weights: true,
            frozen_epochs: 2,
            checkpoint_minutes: 10.0,
            limit: 0,
        }
    }
}
