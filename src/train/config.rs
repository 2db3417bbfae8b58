//! A training run's settings, saved as `config.json` in its folder (what `--resume` continues).
//! The defaults live here once: the CLI's flags and the tests start from them.

use super::augment::Augmentation;
use super::sampling::Sampling;
use super::schedule::LearningRateSchedule;
use super::targets::Mixup;
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
    /// Plateau's floor; cosine decays to it.
    pub min_learning_rate: f64,
    #[serde(default)]
    pub schedule: LearningRateSchedule,
    pub plateau_patience: usize,
    pub plateau_factor: f64,
    pub early_stopping_patience: usize,
    pub val_fraction: f64,
    /// `DIR/val` is used only when it holds at least this many images.
    pub min_val_images: usize,
    pub seed: u64,
    pub augmentation: Augmentation,
    pub class_weights: bool,
    /// How an epoch draws its images.
    #[serde(default)]
    pub sampling: Sampling,
    /// Also validate on a stressed copy of the validation images ([`Augmentation::stress`]:
    /// intensity, contrast, gamma, crop and border changes beyond the training range) and pick
    /// the best epoch and its threshold there: the clean split is saturated and does not show
    /// the test set's shift.
    #[serde(default)]
    pub stressed_validation: bool,
    /// With `init`: epochs with the backbone frozen before the last dense blocks are unfrozen.
    pub frozen_epochs: usize,
    /// Validate and save an exponential moving average of the weights with this decay per step
    /// (`super::ema`) instead of the live weights; the live ones are validated beside it.
    #[serde(default)]
    pub ema_decay: Option<f64>,
    /// Label smoothing ε: targets `(1 − ε) · onehot + ε / classes` (0 = none).
    #[serde(default)]
    pub label_smoothing: f32,
    /// Blend each batch with itself reversed (`super::targets::Mixup`).
    #[serde(default)]
    pub mixup: Option<Mixup>,
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
            schedule: LearningRateSchedule::Plateau,
            plateau_patience: 2,
            plateau_factor: 0.3,
            early_stopping_patience: 5,
            val_fraction: 0.15,
            min_val_images: 200,
            seed: 42,
            augmentation: Augmentation::default(),
            class_weights: true,
            sampling: Sampling::Shuffle,
            stressed_validation: false,
            frozen_epochs: 2,
            ema_decay: None,
            label_smoothing: 0.0,
            mixup: None,
            checkpoint_minutes: 10.0,
            limit: 0,
        }
    }
}

/// A named set of training choices (`pneumoscope train --recipe`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Recipe {
    /// The Keras notebooks' augmentation, class-weighted loss, validation on the clean split.
    #[default]
    Keras,
    /// The model issue's recipe C: [`Augmentation::shift_robust`], class-balanced sampling
    /// (instead of class weights), selection on the stressed validation.
    ShiftRobust,
}

/// One part of `--recipe shift-robust`, to turn off for an ablation (`train --without`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecipePart {
    /// Brightness, contrast and gamma jitter (back to the default brightness 0.8–1.2).
    IntensityJitter,
    /// Random square crops.
    Crops,
    /// Random black or grey borders.
    Borders,
    /// Class-balanced sampling (back to a shuffle with class weights).
    BalancedSampling,
}

impl RecipePart {
    pub fn remove(self, config: &mut TrainConfig) {
        let neutral = Augmentation::default();
        let augmentation = &mut config.augmentation;
        match self {
            RecipePart::IntensityJitter => {
                augmentation.brightness = neutral.brightness;
                augmentation.contrast = neutral.contrast;
                augmentation.gamma = neutral.gamma;
            }
            RecipePart::Crops => augmentation.crop_area = neutral.crop_area,
            RecipePart::Borders => augmentation.border = None,
            RecipePart::BalancedSampling => {
                config.sampling = Sampling::Shuffle;
                config.class_weights = true;
            }
        }
    }
}

impl Recipe {
    pub fn apply(self, config: &mut TrainConfig) {
        match self {
            Recipe::Keras => {}
            Recipe::ShiftRobust => {
                config.augmentation = Augmentation::shift_robust();
                config.sampling = Sampling::Balanced;
                config.class_weights = false;
                config.stressed_validation = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_of_recipe_c_can_be_removed_alone() {
        let mut recipe = TrainConfig::default();
        Recipe::ShiftRobust.apply(&mut recipe);
        let neutral = Augmentation::default();
        let without = |part: RecipePart| {
            let mut config = recipe.clone();
            part.remove(&mut config);
            config
        };
        let c = without(RecipePart::Borders);
        assert_eq!(c.augmentation.border, None);
        assert_eq!(c.augmentation.gamma, recipe.augmentation.gamma);
        let c = without(RecipePart::IntensityJitter);
        assert_eq!(
            (
                c.augmentation.brightness,
                c.augmentation.contrast,
                c.augmentation.gamma
            ),
            (neutral.brightness, neutral.contrast, neutral.gamma)
        );
        assert_eq!(c.augmentation.border, recipe.augmentation.border);
        let c = without(RecipePart::Crops);
        assert_eq!(c.augmentation.crop_area, neutral.crop_area);
        let c = without(RecipePart::BalancedSampling);
        assert_eq!((c.sampling, c.class_weights), (Sampling::Shuffle, true));
        assert!(
            c.stressed_validation,
            "selection stays on the stressed validation"
        );
    }

    #[test]
    fn configs_written_before_smoothing_and_mixup_still_load() {
        let mut json = serde_json::to_value(TrainConfig::default()).unwrap();
        let object = json.as_object_mut().unwrap();
        object.remove("label_smoothing");
        object.remove("mixup");
        let config: TrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!((config.label_smoothing, config.mixup), (0.0, None));
    }
}
