//! The training loop: Adam, class-weighted loss, ReduceLROnPlateau, early stopping on the
//! validation ROC AUC, a checkpoint every epoch and every few minutes, exact resume, clean
//! stop on Ctrl-C. Everything a run produces lands in its folder.

use super::augment::Augmentation;
use super::backend::Backend;
use super::data::{Decoded, Sample, decode_all, scan};
use super::history::{self, EpochRecord};
use super::{score_planes, split};
use crate::card::{ModelCard, Normalisation};
use crate::metrics::{summarise, youden_threshold};
use crate::model::{DenseNet, DenseNetConfig};
use crate::preprocess::{batch_tensor, gray_to_chw};
use crate::weights::codec::{self, Precision};
use anyhow::Context;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::store::{BurnpackStore, ModuleSnapshot};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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

/// Where the run is, saved with every checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainState {
    pub epoch: usize,
    /// Batches of `epoch` already done (non-zero after a mid-epoch checkpoint).
    pub batch: usize,
    pub learning_rate: f64,
    pub best_auc: f64,
    pub best_epoch: Option<usize>,
    /// None until the first validation (JSON has no infinity).
    pub best_val_loss: Option<f64>,
    pub plateau_wait: usize,
    pub epochs_without_improvement: usize,
    pub images_seen: usize,
    pub train_seconds: f64,
    pub finished: bool,
    /// Sum and count of the running epoch's training loss (kept across a mid-epoch resume).
    pub epoch_loss_sum: f64,
    pub epoch_loss_count: usize,
}

pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn split(&self) -> PathBuf {
        self.dir.join("split.json")
    }
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.csv")
    }
    pub fn curves(&self) -> PathBuf {
        self.dir.join("training_curves.png")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }
    pub fn best_weights(&self) -> PathBuf {
        self.dir.join("best.safetensors")
    }
    pub fn best_card(&self) -> PathBuf {
        self.dir.join("best-card.json")
    }
    pub fn mlflow(&self) -> PathBuf {
        self.dir.join("mlflow.json")
    }

    /// The configuration a run was started with (what `--resume` continues), pointing at this
    /// folder even if the run was moved since.
    pub fn saved_config(&self) -> anyhow::Result<TrainConfig> {
        let text = std::fs::read_to_string(self.config()).with_context(|| {
            format!(
                "resuming: no config.json in {} (is it a run folder?)",
                self.dir.display()
            )
        })?;
        let saved: TrainConfig = serde_json::from_str(&text).with_context(|| {
            format!(
                "resuming: {} is not a run configuration",
                self.config().display()
            )
        })?;
        Ok(TrainConfig {
            out: self.dir.clone(),
            ..saved
        })
    }

    /// A new run must not overwrite an earlier one.
    pub fn ensure_fresh(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.checkpoint().exists(),
            "{} already holds a run; use --resume or another --out",
            self.dir.display()
        );
        Ok(())
    }
}

/// Set by the Ctrl-C handler; the loop saves a checkpoint and returns at the next batch.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash or a full disk
/// never leaves a half-written file under the real name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("partial");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

fn save_checkpoint(
    files: &RunFiles,
    model: &DenseNet,
    optim: &ModuleOptimizer,
    state: &TrainState,
) -> anyhow::Result<()> {
    let fresh = files.dir.join("checkpoint.partial");
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(&fresh)?;
    let mut store = BurnpackStore::from_file(fresh.join("model.bpk")).overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("saving model: {e}"))?;
    optim
        .save(fresh.join("optimizer.bpk"))
        .map_err(|e| anyhow::anyhow!("saving optimizer: {e:?}"))?;
    write_atomic(
        &fresh.join("state.json"),
        serde_json::to_string_pretty(state)?.as_bytes(),
    )?;
    // Swap in: the previous checkpoint stays until the new one is complete.
    let current = files.checkpoint();
    let old = files.dir.join("checkpoint.old");
    let _ = std::fs::remove_dir_all(&old);
    if current.exists() {
        std::fs::rename(&current, &old)?;
    }
    std::fs::rename(&fresh, &current)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn load_checkpoint(
    files: &RunFiles,
    model: DenseNet,
    optim: ModuleOptimizer,
) -> anyhow::Result<(DenseNet, ModuleOptimizer, TrainState)> {
    let mut dir = files.checkpoint();
    if !dir.join("state.json").exists() {
        // Interrupted between the two renames of `save_checkpoint`.
        dir = files.dir.join("checkpoint.old");
    }
    let state: TrainState = serde_json::from_str(
        &std::fs::read_to_string(dir.join("state.json")).context("no checkpoint to resume from")?,
    )?;
    let mut model = model;
    let mut store = BurnpackStore::from_file(dir.join("model.bpk"));
    model
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("loading checkpoint model: {e}"))?;
    let optim = optim
        .load(dir.join("optimizer.bpk"))
        .map_err(|e| anyhow::anyhow!("loading optimizer state: {e:?}"))?;
    Ok((model, optim, state))
}

/// Class-weighted binary cross-entropy on logits `[B, 1]`, or weighted cross-entropy for N classes.
fn loss(logits: Tensor<2>, labels: &[usize], class_weights: &[f32], device: &Device) -> Tensor<1> {
    let weights: Vec<f32> = labels.iter().map(|&l| class_weights[l]).collect();
    let total: f32 = weights.iter().sum();
    let [batch, outputs] = logits.dims();
    let w = Tensor::<1>::from_data(TensorData::new(weights, [batch]), device);
    let per_sample: Tensor<1> = if outputs == 1 {
        let y: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
        let y = Tensor::<2>::from_data(TensorData::new(y, [batch, 1]), device);
        // max(x, 0) − x·y + log(1 + e^−|x|): stable for any logit.
        let x = logits;
        (x.clone().clamp_min(0.0) - x.clone() * y + x.abs().neg().exp().add_scalar(1.0).log())
            .reshape([batch])
    } else {
        let log_p = burn::tensor::activation::log_softmax(logits, 1);
        let idx: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [batch, 1]), device);
        log_p.gather(1, idx).reshape([batch]).neg()
    };
    (per_sample * w).sum().div_scalar(total)
}

struct Data {
    classes: Vec<String>,
    /// How validation was chosen, for split.json and the model card.
    split_note: String,
    train: Decoded,
    val: Decoded,
}

fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos}/{len} {msg} ({elapsed} < {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

fn load_data(config: &TrainConfig, files: &RunFiles) -> anyhow::Result<Data> {
    let folder = scan(&train_root(&config.data))?;
    let samples = limited(folder.samples.clone(), config.limit, config.seed);
    let bar = progress_bar(samples.len() as u64, "decode");
    let all = decode_all(&samples, config.image_size, || bar.inc(1));
    bar.finish_and_clear();
    report_skipped(&all.skipped, all.planes.len())?;

    let val_dir = config.data.join("val");
    let official_val = if val_dir.is_dir() {
        scan(&val_dir).ok()
    } else {
        None
    };
    let (train, val, split_note) =
        match official_val.filter(|v| v.samples.len() >= config.min_val_images) {
            Some(v) => {
                let val = decode_all(&v.samples, config.image_size, || {});
                report_skipped(&val.skipped, val.planes.len())?;
                (
                    all,
                    val,
                    format!(
                        "official {} ({} images)",
                        val_dir.display(),
                        v.samples.len()
                    ),
                )
            }
            None => {
                let val_idx = split::grouped_stratified(
                    &all.labels,
                    &all.patients,
                    config.val_fraction,
                    config.seed,
                );
                let (train, val) = partition(all, &val_idx);
                let note = format!(
                    "{:.0}% of train, stratified by class, grouped by patient, seed {}",
                    config.val_fraction * 100.0,
                    config.seed
                );
                (train, val, note)
            }
        };
    let record = serde_json::json!({
        "split": split_note,
        "classes": folder.classes,
        "train_images": train.planes.len(),
        "validation_images": val.planes.len(),
        "validation_files": val.paths.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy()).collect::<Vec<_>>(),
    });
    write_atomic(
        &files.split(),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    eprintln!(
        "data: {} train / {} validation images ({split_note})",
        train.planes.len(),
        val.planes.len()
    );
    Ok(Data {
        classes: folder.classes,
        train,
        val,
        split_note,
    })
}

/// At most `limit` samples (0 = all), as training takes them: classes kept in proportion by a
/// seeded shuffle, then the first `limit`, in path order.
pub fn limited(mut samples: Vec<Sample>, limit: usize, seed: u64) -> Vec<Sample> {
    if limit > 0 && samples.len() > limit {
        samples.shuffle(&mut StdRng::seed_from_u64(seed));
        samples.truncate(limit);
        samples.sort_by(|a, b| a.path.cmp(&b.path));
    }
    samples
}

fn report_skipped(skipped: &[(PathBuf, String)], usable: usize) -> anyhow::Result<()> {
    for (path, why) in skipped {
        eprintln!("warning: skipped {}: {why}", path.display());
    }
    if !skipped.is_empty() {
        eprintln!("warning: {} unreadable image(s) skipped", skipped.len());
    }
    anyhow::ensure!(usable > 0, "no usable images");
    Ok(())
}

fn partition(all: Decoded, val_idx: &[usize]) -> (Decoded, Decoded) {
    let empty = |size| Decoded {
        size,
        planes: vec![],
        labels: vec![],
        paths: vec![],
        patients: vec![],
        skipped: vec![],
    };
    let (mut train, mut val) = (empty(all.size), empty(all.size));
    let in_val: std::collections::HashSet<usize> = val_idx.iter().copied().collect();
    let parts = all
        .planes
        .into_iter()
        .zip(all.labels)
        .zip(all.paths)
        .zip(all.patients)
        .enumerate();
    for (i, (((plane, label), path), patient)) in parts {
        let target = if in_val.contains(&i) {
            &mut val
        } else {
            &mut train
        };
        target.planes.push(plane);
        target.labels.push(label);
        target.paths.push(path);
        target.patients.push(patient);
    }
    (train, val)
}

/// The folder holding `train/{CLASS}/…`: `DIR/train` when it exists, else `DIR` itself.
pub fn train_root(data: &Path) -> PathBuf {
    let train = data.join("train");
    if train.is_dir() {
        train
    } else {
        data.to_path_buf()
    }
}

/// The model a run starts from, and whether it is ImageNet transfer learning (which trains the
/// head alone first). Our own containers warm-start a model already trained on X-rays (e.g. a
/// shipped release trained further at another resolution), so every layer trains at once.
fn initial_model(config: &TrainConfig, device: &Device) -> anyhow::Result<(DenseNet, bool)> {
    let Some(path) = &config.init else {
        return Ok((config.model.init(device), false));
    };
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read --init {}", path.display()))?;
    if codec::is_container(&bytes) {
        Ok((codec::decode(&bytes, &config.model, device)?, false))
    } else {
        Ok((
            crate::weights::import::import_torchvision(path, &config.model, device)?.0,
            true,
        ))
    }
}

/// Trains (or resumes) the run in `config.out` on `backend`; `on_epoch` sees every finished epoch
/// (after its row is in metrics.csv and its plot is drawn). Returns the final state.
pub fn train(
    config: TrainConfig,
    resume: bool,
    backend: Backend,
    mut on_epoch: impl FnMut(&RunFiles, &EpochRecord),
) -> anyhow::Result<TrainState> {
    // Validation runs on the same backend without autodiff (the model's `valid()` lives there).
    let val_device = backend.device()?;
    let files = RunFiles {
        dir: config.out.clone(),
    };
    std::fs::create_dir_all(&files.dir)?;
    let config = if resume {
        files.saved_config()?
    } else {
        files.ensure_fresh()?;
        write_atomic(
            &files.config(),
            serde_json::to_string_pretty(&config)?.as_bytes(),
        )?;
        config
    };
    let data = load_data(&config, &files)?;
    let classes = data.classes.len();
    anyhow::ensure!(
        config.model.num_outputs == if classes == 2 { 1 } else { classes },
        "the model has {} outputs but the data has {classes} classes",
        config.model.num_outputs
    );
    let positive = classes - 1;
    let norm = Normalisation::imagenet();
    let device = val_device.clone().autodiff();
    // Seeds weight initialisation (burn's generator is process-wide, so concurrent runs in one
    // process are not reproducible; the CLI runs one).
    device.seed(config.seed);

    let (mut model, transfer) = initial_model(&config, &device)?;
    let mut optim = AdamConfig::new().init();
    let mut state = TrainState {
        learning_rate: config.learning_rate,
        ..Default::default()
    };
    if resume {
        (model, optim, state) = load_checkpoint(&files, model, optim)?;
        eprintln!(
            "resuming at epoch {} batch {} (lr {:.2e})",
            state.epoch + 1,
            state.batch,
            state.learning_rate
        );
    } else {
        std::fs::write(files.metrics(), format!("{}\n", history::CSV_HEADER))?;
    }

    let counts: Vec<usize> = (0..classes)
        .map(|c| data.train.labels.iter().filter(|&&l| l == c).count())
        .collect();
    let class_weights: Vec<f32> = counts
        .iter()
        .map(|&n| {
            if config.class_weights {
                data.train.labels.len() as f32 / (classes as f32 * n.max(1) as f32)
            } else {
                1.0
            }
        })
        .collect();
    let size = config.image_size;
    let batches = data.train.planes.len().div_ceil(config.batch_size);
    let mut last_checkpoint = Instant::now();

    while state.epoch < config.epochs && !state.finished {
        let epoch = state.epoch;
        let frozen = transfer && epoch < config.frozen_epochs;
        if transfer {
            // Transfer learning: the head alone first, then also the last two dense blocks.
            model = model.freeze_backbone_except_last(if frozen { 0 } else { 2 });
        }
        let mut order: Vec<usize> = (0..data.train.planes.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            config.seed.wrapping_add(epoch as u64),
        ));
        let bar = progress_bar(batches as u64, &format!("epoch {}", epoch + 1));
        let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        bar.set_position(state.batch as u64);
        let started = Instant::now();
        let mut images_this_session = 0usize;
        for b in state.batch..batches {
            let idx = &order[b * config.batch_size..((b + 1) * config.batch_size).min(order.len())];
            let pixels: Vec<f32> = idx
                .par_iter()
                .flat_map_iter(|&i| {
                    // One RNG per (epoch, image): augmentation does not depend on thread order or resumes.
                    let mut rng =
                        StdRng::seed_from_u64(config.seed ^ ((epoch as u64) << 32) ^ i as u64);
                    let plane =
                        config
                            .augmentation
                            .apply(&data.train.planes[i], size, size, &mut rng);
                    gray_to_chw(&plane, &norm)
                })
                .collect();
            let labels: Vec<usize> = idx.iter().map(|&i| data.train.labels[i]).collect();
            let logits = model.forward(batch_tensor(pixels, size, &device));
            let l = loss(logits, &labels, &class_weights, &device);
            let value: f32 = l.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(state.learning_rate, model, grads);
            state.batch = b + 1;
            state.images_seen += idx.len();
            state.epoch_loss_sum += value as f64 * idx.len() as f64;
            state.epoch_loss_count += idx.len();
            images_this_session += idx.len();
            let rate = images_this_session as f64 / started.elapsed().as_secs_f64();
            bar.set_message(format!(
                "loss {:.4} | {:.2} img/s",
                state.epoch_loss_sum / state.epoch_loss_count as f64,
                rate
            ));
            bar.inc(1);
            if !on_terminal && (b + 1) % 25 == 0 {
                // No terminal (a background run writing to a log): a plain line now and then.
                eprintln!(
                    "epoch {} batch {}/{batches}: loss {:.4}, {rate:.2} img/s",
                    epoch + 1,
                    b + 1,
                    state.epoch_loss_sum / state.epoch_loss_count as f64
                );
            }
            let stop = STOP.load(Ordering::SeqCst);
            if stop || last_checkpoint.elapsed().as_secs_f64() > config.checkpoint_minutes * 60.0 {
                // The epoch's time so far goes into the checkpoint; the running state adds the
                // whole epoch's time when the epoch ends.
                let saved = TrainState {
                    train_seconds: state.train_seconds + started.elapsed().as_secs_f64(),
                    ..state.clone()
                };
                save_checkpoint(&files, &model, &optim, &saved)?;
                last_checkpoint = Instant::now();
                if stop {
                    bar.abandon_with_message(
                        "interrupted: checkpoint saved; continue with --resume",
                    );
                    return Ok(saved);
                }
            }
        }
        bar.finish();
        let elapsed = started.elapsed().as_secs_f64();
        state.train_seconds += elapsed;
        let images_per_second = images_this_session as f64 / elapsed;
        let train_loss = state.epoch_loss_sum / state.epoch_loss_count.max(1) as f64;

        // Validation: no augmentation, the card's input size.
        let eval_model = model.valid();
        let scores = score_planes(
            &eval_model,
            &data.val.planes,
            size,
            &norm,
            config.batch_size,
            &val_device,
            positive,
            |_| {},
        );
        let truth: Vec<bool> = data.val.labels.iter().map(|&l| l == positive).collect();
        let val_loss = scores
            .iter()
            .zip(&truth)
            .map(|(&p, &y)| -((if y { p } else { 1.0 - p }).max(1e-7) as f64).ln())
            .sum::<f64>()
            / scores.len().max(1) as f64;
        let m = summarise(&scores, &truth, 0.5);
        eprintln!(
            "epoch {}: train loss {train_loss:.4}, val loss {val_loss:.4}, val AUC {:.4}, acc {:.4}, sens {:.4}, spec {:.4}, lr {:.2e}, {images_per_second:.2} img/s",
            epoch + 1,
            m.roc_auc,
            m.accuracy,
            m.sensitivity,
            m.specificity,
            state.learning_rate
        );
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss,
            val_loss,
            val_auc: m.roc_auc,
            val_accuracy: m.accuracy,
            val_sensitivity: m.sensitivity,
            val_specificity: m.specificity,
            learning_rate: state.learning_rate,
            images_per_second,
        };
        let mut csv = std::fs::OpenOptions::new()
            .append(true)
            .open(files.metrics())?;
        writeln!(csv, "{}", record.csv_line())?;
        drop(csv);
        // A plot is a convenience: failing to draw one must not stop a long run.
        if let Err(e) = history::read(&files.metrics())
            .and_then(|rows| crate::plots::training_curves(&rows, &files.curves()))
        {
            eprintln!(
                "warning: could not draw {}: {e:#}",
                files.curves().display()
            );
        }
        on_epoch(&files, &record);

        if m.roc_auc > state.best_auc {
            state.best_auc = m.roc_auc;
            state.best_epoch = Some(epoch + 1);
            state.epochs_without_improvement = 0;
            let threshold = youden_threshold(&scores, &truth);
            let mut card = ModelCard::new(
                "pneumoscope-densenet",
                &config.model,
                data.classes.clone(),
                size,
            );
            card.threshold = threshold;
            card.metrics.validation = Some(summarise(&scores, &truth, threshold));
            card.training.epochs = (epoch + 1) as f32;
            card.training.data = format!(
                "{} ({} training images)",
                config.data.display(),
                data.train.planes.len()
            );
            card.training.split = format!(
                "validation: {} images, {}",
                data.val.planes.len(),
                data.split_note
            );
            card.weights = crate::card::WeightsInfo {
                file: "best.safetensors".into(),
                format: codec::FORMAT_F32.into(),
                dtype: "f32".into(),
                ..Default::default()
            };
            write_atomic(
                &files.best_weights(),
                &codec::encode(&eval_model, Precision::F32),
            )?;
            write_atomic(&files.best_card(), card.to_json().as_bytes())?;
        } else {
            state.epochs_without_improvement += 1;
        }
        if state
            .best_val_loss
            .is_none_or(|best| val_loss < best - 1e-4)
        {
            state.best_val_loss = Some(val_loss);
            state.plateau_wait = 0;
        } else {
            state.plateau_wait += 1;
            if state.plateau_wait >= config.plateau_patience {
                state.learning_rate =
                    (state.learning_rate * config.plateau_factor).max(config.min_learning_rate);
                state.plateau_wait = 0;
                eprintln!(
                    "validation loss plateaued: learning rate → {:.2e}",
                    state.learning_rate
                );
            }
        }
        state.epoch += 1;
        state.batch = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_loss_count = 0;
        if state.epochs_without_improvement >= config.early_stopping_patience {
            eprintln!(
                "early stopping: no validation AUC gain for {} epochs",
                state.epochs_without_improvement
            );
            state.finished = true;
        }
        save_checkpoint(&files, &model, &optim, &state)?;
        last_checkpoint = Instant::now();
    }
    state.finished = true;
    save_checkpoint(&files, &model, &optim, &state)?;
    Ok(state)
}
