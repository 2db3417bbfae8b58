//! `pneumoscope fit-ood`: fits the out-of-distribution statistics for a model card's weights
//! (no retraining) on the training X-rays, chooses the refusal threshold on the validation
//! X-rays of the same patient-grouped split as training, writes `<weights>.ood.safetensors`
//! next to the card and records it in the card. `pneumoscope export` calls [`fit_and_record`].

use crate::DeviceChoice;
use anyhow::Context;
use indicatif::ProgressBar;
use pneumoscope::card::{ModelCard, OodInfo};
use pneumoscope::ood::{self, OodStats};
use pneumoscope::predict::{Pipeline, beside_card, weights_path};
use pneumoscope::train::data::scan;
use pneumoscope::train::evaluate::score_files;
use pneumoscope::train::run::{TrainConfig, limited, train_root};
use pneumoscope::train::split::grouped_stratified;
use pneumoscope::weights::sha256_hex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The model card to fit for; the statistics file is written next to it and the card is updated.
    #[arg(long, default_value = "weights/model-card.json")]
    card: PathBuf,
    /// Dataset root with `train/{CLASS}/…` (the data these weights were trained on; default:
    /// the run's, from config.json beside the card).
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    /// Also write the training and validation features here (safetensors), for analysis.
    #[arg(long, hide = true)]
    save_features: Option<PathBuf>,
}

#[derive(clap::Args, Clone, Debug)]
pub struct Settings {
    /// Principal directions kept by the probabilistic PCA.
    #[arg(
        id = "ood_components",
        value_name = "K",
        long = "ood-components",
        default_value_t = 64
    )]
    pub components: usize,
    /// Largest share of validation X-rays the threshold may refuse.
    #[arg(
        id = "ood_max_refused",
        value_name = "SHARE",
        long = "ood-max-refused",
        default_value_t = 0.01
    )]
    pub max_refused: f64,
    /// Validation split (share of train, seed); by default the run's config.json next to the
    /// card, else 0.15 and 42 (the shipped model's).
    #[arg(
        id = "ood_val_fraction",
        value_name = "SHARE",
        long = "ood-val-fraction"
    )]
    pub val_fraction: Option<f64>,
    #[arg(id = "ood_seed", value_name = "SEED", long = "ood-seed")]
    pub seed: Option<u64>,
    #[arg(
        id = "ood_batch_size",
        value_name = "N",
        long = "ood-batch-size",
        default_value_t = 16
    )]
    pub batch_size: usize,
}

/// What a fit produced, before it is written.
pub struct Fitted {
    pub stats: OodStats,
    pub info: OodInfo,
    train: Vec<Vec<f32>>,
    val: Vec<Vec<f32>>,
}

/// How the weights' training run chose its data, from `config.json` beside the card when
/// there is one (a run folder), else the shipped model's settings.
struct RunSplit {
    fraction: f64,
    seed: u64,
    limit: usize,
    data: Option<PathBuf>,
    source: &'static str,
}

fn run_split(card_path: &Path, settings: &Settings) -> RunSplit {
    let run: Option<TrainConfig> = std::fs::read_to_string(beside_card(card_path, "config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    RunSplit {
        fraction: settings
            .val_fraction
            .or(run.as_ref().map(|r| r.val_fraction))
            .unwrap_or(0.15),
        seed: settings.seed.or(run.as_ref().map(|r| r.seed)).unwrap_or(42),
        limit: run.as_ref().map_or(0, |r| r.limit),
        data: run.as_ref().map(|r| r.data.clone()),
        source: if run.is_some() {
            "the run's config.json"
        } else {
            "defaults"
        },
    }
}

/// The dataset root for the statistics: the one given, else the training run's, else `fallback`.
pub fn data_root(
    card_path: &Path,
    given: Option<&Path>,
    fallback: Option<&Path>,
) -> Option<PathBuf> {
    let run = run_split(card_path, &Settings::default())
        .data
        .filter(|d| train_root(d).is_dir());
    given.map(Path::to_path_buf).or(run).or_else(|| {
        fallback
            .filter(|f| f.join("train").is_dir())
            .map(Path::to_path_buf)
    })
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            components: 64,
            max_refused: 0.01,
            val_fraction: None,
            seed: None,
            batch_size: 16,
        }
    }
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

/// Fits the statistics for `pipeline`'s model on `data`'s training images.
pub fn fit(
    pipeline: &Pipeline,
    card_path: &Path,
    data: &Path,
    settings: &Settings,
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
    let bar = ProgressBar::new(files.len() as u64);
    let scored = score_files(
        &pipeline.model,
        &pipeline.card,
        &files,
        settings.batch_size,
        &pipeline.device,
        |n| bar.inc(n as u64),
    );
    bar.finish_and_clear();
    for (p, why) in &scored.skipped {
        eprintln!("warning: skipped {}: {why}", p.display());
    }
    // The split over the readable images, exactly as training made it.
    let by_path: HashMap<&PathBuf, &pneumoscope::train::data::Sample> =
        samples.iter().map(|s| (&s.path, s)).collect();
    let labels: Vec<usize> = scored.paths.iter().map(|p| by_path[p].label).collect();
    let patients: Vec<String> = scored
        .paths
        .iter()
        .map(|p| by_path[p].patient.clone())
        .collect();
    let val_index = grouped_stratified(&labels, &patients, fraction, seed);
    let mut is_val = vec![false; labels.len()];
    val_index.iter().for_each(|&i| is_val[i] = true);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (features, v) in scored.features.into_iter().zip(is_val) {
        if v {
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
    let dim = train[0].len();
    // Small runs (smoke tests) cannot support many directions.
    let components = settings.components.min(train.len() / 2).min(dim - 1).max(1);
    if components < settings.components {
        eprintln!(
            "warning: fit-ood: {components} directions instead of {} ({} training images, {dim} features)",
            settings.components,
            train.len()
        );
    }

    let stats = ood::fit::fit(&train, components)
        .map_err(|e| anyhow::anyhow!("fitting the OOD statistics: {e}"))?;
    let distances: Vec<f32> = val.iter().map(|f| stats.distance(f)).collect();
    let threshold = ood::fit::threshold(&distances, settings.max_refused);
    let refused = distances.iter().filter(|d| **d > threshold).count();
    let train_distances: Vec<f32> = train.iter().map(|f| stats.distance(f)).collect();
    let quantile = |v: &[f32], q: f64| {
        let mut s = v.to_vec();
        s.sort_by(f32::total_cmp);
        s[((s.len() - 1) as f64 * q).round() as usize]
    };
    eprintln!(
        "fit-ood: {} directions of {}; distance median train {:.1} / validation {:.1}; validation 99th percentile {:.1}, max {:.1}",
        stats.rank(),
        stats.dim(),
        quantile(&train_distances, 0.5),
        quantile(&distances, 0.5),
        quantile(&distances, 0.99),
        quantile(&distances, 1.0),
    );
    let info = OodInfo {
        file: pipeline.card.ood_file_name(),
        format: ood::FORMAT.into(),
        bytes: 0,
        sha256: String::new(),
        method: format!(
            "Mahalanobis distance of the global-average-pooled DenseNet features ({} values) under probabilistic PCA ({} directions + isotropic residual)",
            stats.dim(),
            stats.rank()
        ),
        components: stats.rank(),
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
        stats,
        info,
        train,
        val,
    })
}

/// Writes the statistics next to the card (`dir`) and records them in `card`.
pub fn record(fitted: &Fitted, dir: &Path, card: &mut ModelCard) -> anyhow::Result<PathBuf> {
    let bytes = fitted.stats.to_bytes();
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
    settings: &Settings,
    dir: &Path,
    card: &mut ModelCard,
) -> anyhow::Result<Fitted> {
    let fitted = fit(pipeline, card_path, data, settings)?;
    let path = record(&fitted, dir, card)?;
    eprintln!("fit-ood: wrote {}", path.display());
    Ok(fitted)
}

fn save_features(path: &Path, fitted: &Fitted) -> anyhow::Result<()> {
    let flat = |rows: &[Vec<f32>]| {
        rows.iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let d = fitted.stats.dim();
    let (train, val) = (flat(&fitted.train), flat(&fitted.val));
    let views = [
        (
            "train",
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                vec![fitted.train.len(), d],
                &train,
            )?,
        ),
        (
            "val",
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                vec![fitted.val.len(), d],
                &val,
            )?,
        ),
    ];
    std::fs::write(path, safetensors::serialize(views, None)?)
        .with_context(|| format!("writing {}", path.display()))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.card)
        .with_context(|| format!("reading model card {}", args.card.display()))?;
    let mut card = ModelCard::from_json(&text)
        .with_context(|| format!("parsing model card {}", args.card.display()))?;
    // A refit replaces earlier statistics, even missing or damaged ones.
    card.ood = None;
    let weights = weights_path(&args.card, &card);
    let bytes = std::fs::read(&weights)
        .with_context(|| format!("reading weights {}", weights.display()))?;
    let pipeline = Pipeline::load(card.clone(), &bytes, &args.device.device()?)
        .with_context(|| format!("loading weights {}", weights.display()))?;
    let dir = args.card.parent().unwrap_or(Path::new(".")).to_path_buf();
    let data = data_root(&args.card, args.data.as_deref(), None)
        .context("no training data: pass --data DIR (the dataset root with train/)")?;
    let fitted = fit_and_record(
        &pipeline,
        &args.card,
        &data,
        &args.settings,
        &dir,
        &mut card,
    )?;
    if let Some(path) = &args.save_features {
        save_features(path, &fitted)?;
    }
    std::fs::write(&args.card, card.to_json())
        .with_context(|| format!("writing {}", args.card.display()))?;
    eprintln!("fit-ood: updated {}", args.card.display());
    Ok(())
}
