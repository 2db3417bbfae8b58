//! `pneumoscope export`: trained f32 weights → the shipped int8 release, measured on the
//! official test folder (f32 and int8), with OOD statistics fitted for the int8 model, a card
//! that records all of it, the classification report, quantization figures and plots.

use super::calibrate::fit_on_stressed_validation;
use super::evaluate::{Evaluation, classification_report, evaluate, write_plots};
use super::fit_ood::{FitSettings, data_root, fit_and_record};
use crate::card::{ModelCard, WeightsInfo};
use crate::predict::Pipeline;
use crate::weights::codec;
use anyhow::Context;
use burn::prelude::Device;
use std::path::{Path, PathBuf};

/// What to export and how.
pub struct ExportRequest<'a> {
    /// Card of the trained f32 weights (a run's best-card.json).
    pub card: &'a Path,
    /// Official test folder.
    pub test: &'a Path,
    /// Output folder (the shipped model lives in weights/).
    pub out: &'a Path,
    pub version: &'a str,
    /// Free text for the card's training section.
    pub recipe: Option<String>,
    pub compute: Option<String>,
    pub batch_size: usize,
    /// Dataset root with `train/` for the OOD statistics (default: the training run's, else the
    /// folder holding `test`).
    pub ood_data: Option<&'a Path>,
    pub ood: FitSettings,
}

/// A finished export.
pub struct Exported {
    pub card: ModelCard,
    /// The int8 weights' file name, in `out`.
    pub weights_file: String,
    pub weights_bytes: usize,
    pub f32: Evaluation,
    pub int8: Evaluation,
    /// The largest change of a test probability from f32 to int8.
    pub max_change: f32,
    /// Every file written into `out`.
    pub files: Vec<PathBuf>,
}

pub fn export(request: ExportRequest, mut progress: impl FnMut(usize)) -> anyhow::Result<Exported> {
    let device = Device::flex();
    let mut f32_pipeline = Pipeline::from_card_file(request.card, &device)?;
    let int8 = codec::encode(&f32_pipeline.model, codec::Precision::Int8);
    // The int8 model is the one that ships: its raw scores on the run's stressed validation fix
    // the calibration (and so the 0.5 threshold) before test is looked at.
    let mut raw_card = f32_pipeline.card.clone();
    raw_card.weights.sha256.clear(); // the f32 file's, if any; these are the int8 bytes
    raw_card.calibration = None; // a card that is already calibrated is fitted afresh from raw
    let uncalibrated = Pipeline::load(raw_card, &int8, &device)?;
    if let Some(calibration) =
        fit_on_stressed_validation(request.card, &uncalibrated, request.batch_size)?
    {
        eprintln!(
            "calibration (Platt, on the stressed validation): slope {:.4}, intercept {:.4}; ECE {:.4} → {:.4}",
            calibration.slope, calibration.intercept, calibration.ece_before, calibration.ece_after
        );
        f32_pipeline.card.calibration = Some(calibration);
        f32_pipeline.card.threshold = 0.5;
    }
    let mut card: ModelCard = f32_pipeline.card.clone();
    card.version = request.version.to_string();
    let weights_file = format!(
        "pneumoscope-densenet{}-v{}.int8.safetensors",
        card.architecture.depth, request.version
    );
    card.weights = WeightsInfo::int8(weights_file.clone(), &int8);
    if let Some(recipe) = request.recipe {
        card.training.recipe = recipe;
    }
    if let Some(compute) = request.compute {
        card.training.compute = compute;
    }

    eprintln!("measuring f32 and int8 on {}", request.test.display());
    let f32 = evaluate(
        &f32_pipeline,
        request.test,
        request.batch_size,
        &mut progress,
    )?;
    let int8_pipeline = Pipeline::load(card.clone(), &int8, &device)?;
    let int8_evaluation = evaluate(
        &int8_pipeline,
        request.test,
        request.batch_size,
        &mut progress,
    )?;
    let max_change = f32
        .scores
        .iter()
        .zip(&int8_evaluation.scores)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    card.metrics.test = Some(int8_evaluation.metrics.clone());
    card.metrics.test_normals_by_family = int8_evaluation.normals_by_family.clone();
    card.metrics.test_calibration_error = Some(int8_evaluation.calibration_error);

    let out = request.out;
    std::fs::create_dir_all(out)?;
    // The OOD statistics of the int8 model, fitted on the training images.
    let ood_data = data_root(request.card, request.ood_data, request.test.parent()).context(
        "no training data for the OOD statistics: pass --ood-data DIR (the dataset root with train/)",
    )?;
    fit_and_record(
        &int8_pipeline,
        request.card,
        &ood_data,
        &request.ood,
        out,
        &mut card,
        progress,
    )?;
    let weights_path = out.join(&weights_file);
    std::fs::write(&weights_path, &int8)
        .with_context(|| format!("writing {}", weights_path.display()))?;
    std::fs::write(out.join("model-card.json"), card.to_json())?;
    let report = classification_report(&int8_evaluation.metrics, &card.labels, card.threshold);
    std::fs::write(out.join("classification_report.txt"), report)?;
    let quantization = serde_json::json!({
        "f32": f32.metrics,
        "int8": int8_evaluation.metrics,
        "f32_normals_by_family": f32.normals_by_family,
        "int8_normals_by_family": int8_evaluation.normals_by_family,
        "f32_calibration_error": f32.calibration_error,
        "int8_calibration_error": int8_evaluation.calibration_error,
        "max_abs_probability_change": max_change,
        "bytes_int8": int8.len(),
    });
    std::fs::write(
        out.join("quantization.json"),
        serde_json::to_string_pretty(&quantization)?,
    )?;
    write_plots(out, &int8_evaluation, &card)?;
    let ood_file = card
        .ood
        .as_ref()
        .map(|o| o.file.clone())
        .unwrap_or_default();
    let files = [
        weights_file.as_str(),
        ood_file.as_str(),
        "model-card.json",
        "classification_report.txt",
        "quantization.json",
        "confusion_matrix.png",
        "roc.png",
        "reliability.png",
    ]
    .map(|name| out.join(name))
    .to_vec();
    Ok(Exported {
        card,
        weights_file,
        weights_bytes: int8.len(),
        f32,
        int8: int8_evaluation,
        max_change,
        files,
    })
}
