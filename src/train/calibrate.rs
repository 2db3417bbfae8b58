//! The shipped model's calibration, fitted on its training run's stressed validation: the
//! validation images the run chose epochs on, changed beyond the training augmentation's range
//! (the clean split is saturated and moved v0.2.0's threshold the wrong way; test is never
//! used to fit anything).

use super::checkpoint::RunFiles;
use super::dataset::{decode_and_split, stressed_copy};
use super::scoring::positive_scores;
use crate::calibration::{self, Calibration};
use crate::predict::Pipeline;
use anyhow::Context;
use std::path::Path;

/// Fits Platt scaling for `pipeline`'s model (the int8 one that ships) on the stressed
/// validation of the run whose folder holds `card_path`. `None` when there is nothing to fit
/// on: the card is not in a run folder, the run did not use a stressed validation, or the
/// model is not binary.
pub fn fit_on_stressed_validation(
    card_path: &Path,
    pipeline: &Pipeline,
    batch: usize,
) -> anyhow::Result<Option<Calibration>> {
    let dir = card_path.parent().unwrap_or(Path::new("."));
    let files = RunFiles {
        dir: dir.to_path_buf(),
    };
    if !files.config().is_file() || pipeline.card.labels.len() != 2 {
        return Ok(None);
    }
    let config = files.saved_config()?;
    if !config.stressed_validation {
        return Ok(None);
    }
    anyhow::ensure!(
        config.image_size == pipeline.card.input_size,
        "the run in {} trained at {} px but the card says {} px",
        dir.display(),
        config.image_size,
        pipeline.card.input_size
    );
    let split = decode_and_split(&config).with_context(|| {
        format!(
            "calibration: reading the run's validation images from {}",
            config.data.display()
        )
    })?;
    let stressed = stressed_copy(&split.val, config.seed);
    let positive = pipeline.card.positive_index();
    let scores = positive_scores(
        &pipeline.model,
        &stressed,
        &pipeline.card.normalisation,
        batch,
        positive,
        &pipeline.device,
    )?;
    let truth: Vec<bool> = stressed.labels.iter().map(|&l| l == positive).collect();
    let negatives = truth.iter().filter(|&&y| !y).count();
    let fitted_on = format!(
        "the training run's stressed validation: {} images ({} {}, {} {}; {}), each changed beyond the training augmentation (brightness/contrast 0.6-1.4, gamma 0.6-1.7, crops of 40-100 %, every image shrunk to 60-95 % on a black or grey border); class-balanced weights",
        truth.len(),
        negatives,
        pipeline.card.labels[1 - positive],
        truth.len() - negatives,
        pipeline.card.labels[positive],
        split.note
    );
    Ok(Some(calibration::fit(&scores, &truth, fitted_on)))
}
