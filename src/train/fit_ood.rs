//! Fitting the OOD statistics for existing weights (no retraining; `pneumoscope fit-ood` and
//! `export`): the embeddings of the training X-rays (pooled features, first-transition channel
//! statistics), split by patient exactly as the weights' training run split them; probabilistic
//! PCA ([`crate::ood::ppca`]) of each group on the training part; the refusal threshold chosen
//! on the validation part.

use super::config::TrainConfig;
use super::data::{Sample, scan};
use super::dataset::{limited, train_root};
use super::split::grouped_stratified;
use crate::card::{ModelCard, OodInfo};
use crate::ood::ppca::{self, PpcaError};
use crate::ood::{FORMAT_GROUPS, OodProfile, OodStats};
use crate::predict::{Pipeline, beside_card};
use crate::tensor_bytes::sha256_hex;
use anyhow::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How the statistics are fitted.
#[derive(Clone, Debug, PartialEq)]
pub struct FitSettings {
    /// Principal directions kept by the probabilistic PCA of the pooled features.
    pub components: usize,
    /// Principal directions kept for the first transition's channel statistics (chosen on the
    /// tuning non-X-rays, docs/ood.md: 64 of 256).
    pub appearance_components: usize,
    /// Largest share of validation X-rays the threshold may refuse.
    pub max_refused: f64,
    /// Validation share of train; by default the run's (config.json beside the card), else
    /// 0.15 (the shipped model's).
    pub val_fraction: Option<f64>,
    /// The split's seed; by default the run's, else 42.
    pub seed: Option<u64>,
    pub batch_size: usize,
}

impl Default for FitSettings {
    fn default() -> Self {
        Self {
            components: 64,
            appearance_components: 64,
            max_refused: 0.01,
            val_fraction: None,
            seed: None,
            batch_size: 16,
        }
    }
}

/// What a fit produced, before it is written.
pub struct Fitted {
    pub profile: OodProfile,
    pub info: OodInfo,
    /// The features it was fitted on (training part) and thresholded on (validation part).
    pub train: Vec<Vec<f32>>,
    pub val: Vec<Vec<f32>>,
}

/// How the weights' training run chose its data: from `config.json` beside the card when
/// there is one (a run folder), else the shipped model's settings.
struct RunSplit {
    fraction: f64,
    seed: u64,
    limit: usize,
    data: Option<PathBuf>,
    source: &'static str,
}

fn run_split(card_path: &Path, settings: &FitSettings) -> RunSplit {
    let run: Option<TrainConfig> = std::fs::read_to_string(beside_card(card_path, "config.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let shipped = TrainConfig::default();
    RunSplit {
        fraction: settings.val_fraction.unwrap_or(
            run.as_ref()
                .map_or(shipped.val_fraction, |r| r.val_fraction),
        ),
        seed: settings
            .seed
            .unwrap_or(run.as_ref().map_or(shipped.seed, |r| r.seed)),
        limit: run.as_ref().map_or(0, |r| r.limit),
        data: run.as_ref().map(|r| r.data.clone()),
        source: if run.is_some() {
            "the run's config.json"
        } else {
            "defaults"
        },
    }
}

/// The dataset root for the statistics: the one given, else the training run's, else
/// `fallback` (when it holds `train/`).
pub fn data_root(
    card_path: &Path,
    given: Option<&Path>,
    fallback: Option<&Path>,
) -> Option<PathBuf> {
    let run = run_split(card_path, &FitSettings::default())
        .data
        .filter(|d| train_root(d).is_dir());
    given.map(Path::to_path_buf).or(run).or_else(|| {
        fallback
            .filter(|f| f.join("train").is_dir())
            .map(Path::to_path_buf)
    })
}

/// The last two components of a data path (`chest_xray/train`): the card names the data, not
/// the machine it sat on.
fn short(path: &Path) -> String {
    let parts: Vec<_> = path
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

fn quantile(values: &[f32], q: f64) -> f32 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Fits the statistics for `pipeline`'s model on `data`'s training images; `progress` is told
/// how many files each batch of the feature pass held.
pub fn fit(
    pipeline: &Pipeline,
    card_path: &Path,
    data: &Path,
    settings: &FitSettings,
    progress: impl FnMut(usize),
) -> anyhow::Result<Fitted> {
    anyhow::ensure!(
        (0.0..1.0).contains(&settings.max_refused),
        "--ood-max-refused must be in [0, 1), got {}",
        settings.max_refused
    );
    let root = train_root(data);
    let folder = scan(&root)?;
    anyhow::ensure!(
        folder.classes == pipeline.card.labels,
        "the classes in {} {:?} differ from the model's labels {:?}",
        root.display(),
        folder.classes,
        pipeline.card.labels
    );
    let RunSplit {
        fraction,
        seed,
        limit,
        source,
        ..
    } = run_split(card_path, settings);
    anyhow::ensure!(
        fraction > 0.0 && fraction < 1.0,
        "the validation fraction must be in (0, 1), got {fraction}"
    );
    let samples = limited(folder.samples, limit, seed);
    eprintln!(
        "fit-ood: features of {} images in {} (validation {:.0}% grouped by patient, seed {seed}, from {source})",
        samples.len(),
        root.display(),
        fraction * 100.0
    );

    let files: Vec<PathBuf> = samples.iter().map(|s| s.path.clone()).collect();
    let scored = pipeline.score_files(&files, settings.batch_size, progress)?;
    for (path, why) in &scored.skipped {
        eprintln!("warning: skipped {}: {why}", path.display());
    }
    // The split over the readable images, exactly as training made it.
    let by_path: HashMap<&PathBuf, &Sample> = samples.iter().map(|s| (&s.path, s)).collect();
    let labels: Vec<usize> = scored.paths.iter().map(|p| by_path[p].label).collect();
    let patients: Vec<String> = scored
        .paths
        .iter()
        .map(|p| by_path[p].patient.clone())
        .collect();
    let mut is_val = vec![false; labels.len()];
    for i in grouped_stratified(&labels, &patients, fraction, seed) {
        is_val[i] = true;
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (features, in_val) in scored.features.into_iter().zip(is_val) {
        if in_val {
            val.push(features)
        } else {
            train.push(features)
        }
    }
    anyhow::ensure!(
        !val.is_empty() && train.len() >= 4,
        "{} training and {} validation images are too few for OOD statistics",
        train.len(),
        val.len()
    );
    let (pooled, embedding) = pipeline.embedding_sizes();
    anyhow::ensure!(
        train[0].len() == embedding,
        "embeddings of {} values, expected {embedding}",
        train[0].len()
    );
    let profile = OodProfile {
        parts: vec![
            balanced(
                fit_group(&train, 0..pooled, settings.components)?,
                &val,
                0..pooled,
            ),
            balanced(
                fit_group(&train, pooled..embedding, settings.appearance_components)?,
                &val,
                pooled..embedding,
            ),
        ],
    };
    let distances: Vec<f32> = val.iter().map(|f| profile.distance(f)).collect();
    let threshold = ppca::threshold(&distances, settings.max_refused);
    let refused = distances.iter().filter(|d| **d > threshold).count();
    let train_distances: Vec<f32> = train.iter().map(|f| profile.distance(f)).collect();
    let [pooled_part, appearance_part] = [&profile.parts[0], &profile.parts[1]];
    eprintln!(
        "fit-ood: {} + {} directions of {} + {}; distance median train {:.2} / validation {:.2}; validation 99th percentile {:.2}, max {:.2}",
        pooled_part.rank(),
        appearance_part.rank(),
        pooled_part.dim(),
        appearance_part.dim(),
        quantile(&train_distances, 0.5),
        quantile(&distances, 0.5),
        quantile(&distances, 0.99),
        quantile(&distances, 1.0),
    );
    let info = OodInfo {
        file: pipeline.card.ood_file_name(),
        format: FORMAT_GROUPS.into(),
        bytes: 0,
        sha256: String::new(),
        method: format!(
            "Mahalanobis distance under probabilistic PCA (directions + isotropic residual) of the global-average-pooled DenseNet features ({} values, {} directions) and, independent of them, of the first transition's channel means and standard deviations ({} values, {} directions); each group scaled to distance 1 at its validation 99th percentile, squared distances add",
            pooled_part.dim(),
            pooled_part.rank(),
            appearance_part.dim(),
            appearance_part.rank(),
        ),
        components: pooled_part.rank(),
        threshold,
        fitted_on: format!(
            "{} training X-rays of {} (validation held out: {:.0}% of train, grouped by patient, seed {seed})",
            train.len(),
            short(&root),
            fraction * 100.0
        ),
        threshold_rule: format!(
            "smallest distance refusing at most {:.1}% of the {} validation X-rays",
            settings.max_refused * 100.0,
            val.len()
        ),
        validation_images: val.len(),
        validation_refused: refused as f64 / val.len() as f64,
    };
    eprintln!(
        "fit-ood: threshold {threshold:.2}: {refused} of {} validation X-rays ({:.2}%) refused",
        val.len(),
        info.validation_refused * 100.0
    );
    Ok(Fitted {
        profile,
        info,
        train,
        val,
    })
}

/// `group` scaled so that its distance at the 99th percentile of the validation X-rays is 1:
/// otherwise the group with more features (1024 pooled against 256) dominates the sum and an
/// input that is unusual in one group alone passes (docs/ood.md, "v0.4.0 redesign").
fn balanced(group: OodStats, val: &[Vec<f32>], columns: std::ops::Range<usize>) -> OodStats {
    let squared: Vec<f32> = val
        .iter()
        .map(|e| group.squared_distance(&e[columns.clone()]) as f32)
        .collect();
    let scale = quantile(&squared, 0.99).max(f32::MIN_POSITIVE);
    group.scaled(scale as f64)
}

/// PPCA of one group (`columns` of every embedding); small runs (smoke tests) cannot support
/// many directions.
fn fit_group(
    embeddings: &[Vec<f32>],
    columns: std::ops::Range<usize>,
    wanted: usize,
) -> anyhow::Result<OodStats> {
    let group: Vec<Vec<f32>> = embeddings
        .iter()
        .map(|e| e[columns.clone()].to_vec())
        .collect();
    let dim = columns.len();
    let components = wanted.min(group.len() / 2).min(dim - 1).max(1);
    if components < wanted {
        eprintln!(
            "warning: fit-ood: {components} directions instead of {wanted} ({} training images, {dim} features)",
            group.len()
        );
    }
    ppca::fit(&group, components)
        .map_err(|e: PpcaError| anyhow::anyhow!("fitting the OOD statistics: {e}"))
}

/// Writes the statistics into `dir` (the card's folder) and records them in `card`.
pub fn record(fitted: &Fitted, dir: &Path, card: &mut ModelCard) -> anyhow::Result<PathBuf> {
    let bytes = fitted.profile.to_bytes();
    let mut info = fitted.info.clone();
    info.bytes = bytes.len();
    info.sha256 = sha256_hex(&bytes);
    let path = dir.join(&info.file);
    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    card.ood = Some(info);
    Ok(path)
}

/// Fit, write and record: the one path for `fit-ood` and `export`.
pub fn fit_and_record(
    pipeline: &Pipeline,
    card_path: &Path,
    data: &Path,
    settings: &FitSettings,
    dir: &Path,
    card: &mut ModelCard,
    progress: impl FnMut(usize),
) -> anyhow::Result<Fitted> {
    let fitted = fit(pipeline, card_path, data, settings, progress)?;
    let path = record(&fitted, dir, card)?;
    eprintln!("fit-ood: wrote {}", path.display());
    Ok(fitted)
}

/// The training and validation features as safetensors (`train`, `val`), for analysis.
pub fn save_features(path: &Path, fitted: &Fitted) -> anyhow::Result<()> {
    use crate::tensor_bytes::{ContainerTensor, serialise_container};
    let dim = fitted.profile.dim();
    let matrix = |name: &str, rows: &[Vec<f32>]| {
        ContainerTensor::f32(name, vec![rows.len(), dim], &rows.concat())
    };
    let tensors = [matrix("train", &fitted.train), matrix("val", &fitted.val)];
    std::fs::write(path, serialise_container(&tensors, Default::default()))
        .with_context(|| format!("writing {}", path.display()))
}

/// `pneumoscope fit-ood`: refits the statistics of the weights `card_path` names (earlier
/// statistics, even missing or damaged ones, are replaced), writes them beside the card and
/// updates the card. `data`: the dataset root with `train/` (default: the training run's).
pub fn refit_card(
    card_path: &Path,
    data: Option<&Path>,
    settings: &FitSettings,
    device: &burn::prelude::Device,
    progress: impl FnMut(usize),
) -> anyhow::Result<Fitted> {
    let text = std::fs::read_to_string(card_path)
        .with_context(|| format!("reading model card {}", card_path.display()))?;
    let mut card = ModelCard::from_json(&text)
        .with_context(|| format!("parsing model card {}", card_path.display()))?;
    card.ood = None;
    let weights = crate::predict::weights_path(card_path, &card);
    let bytes = std::fs::read(&weights)
        .with_context(|| format!("reading weights {}", weights.display()))?;
    let pipeline = Pipeline::load(card.clone(), &bytes, device)
        .with_context(|| format!("loading weights {}", weights.display()))?;
    let dir = card_path.parent().unwrap_or(Path::new("."));
    let data = data_root(card_path, data, None)
        .context("no training data: pass --data DIR (the dataset root with train/)")?;
    let fitted = fit_and_record(
        &pipeline, card_path, &data, settings, dir, &mut card, progress,
    )?;
    std::fs::write(card_path, card.to_json())
        .with_context(|| format!("writing {}", card_path.display()))?;
    Ok(fitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two groups whose raw distances differ a hundredfold weigh the same once balanced.
    #[test]
    fn balanced_groups_reach_distance_one_at_the_validation_99th_percentile() {
        let embeddings: Vec<Vec<f32>> = (0..200)
            .map(|i| {
                let t = i as f32 / 200.0;
                vec![t.sin(), (3.0 * t).cos(), 100.0 * (5.0 * t).sin(), 100.0 * t]
            })
            .collect();
        for columns in [0..2, 2..4] {
            let group = balanced(
                fit_group(&embeddings, columns.clone(), 1).unwrap(),
                &embeddings,
                columns.clone(),
            );
            let distances: Vec<f32> = embeddings
                .iter()
                .map(|e| group.distance(&e[columns.clone()]))
                .collect();
            let at = quantile(&distances, 0.99);
            assert!((at - 1.0).abs() < 1e-4, "{columns:?}: {at}");
        }
    }
}
