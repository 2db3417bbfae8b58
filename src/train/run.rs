//! The training loop: Adam, class-weighted loss, a checkpoint every epoch and every few
//! minutes, exact resume, clean stop on Ctrl-C; after each epoch a validation, the best weights
//! saved, and the [`schedule`](super::schedule) rules (plateau, early stopping) applied.
//! Everything a run produces lands in its folder.

use super::backend::TrainBackend;
use super::checkpoint::{RunFiles, TrainState, load_checkpoint, save_checkpoint, write_atomic};
use super::config::TrainConfig;
use super::data::PlaneSet;
use super::dataset::{self, TrainingData};
use super::ema::Ema;
use super::history::{self, EpochRecord};
use super::loss::soft_target_loss;
use super::plots;
use super::progress::progress_bar;
use super::schedule::{Cosine, EarlyStopping, LearningRateSchedule, Plateau};
use super::scoring::positive_scores;
use super::targets::Targets;
use crate::card::{ModelCard, Normalisation, TestMetrics, WeightsInfo};
use crate::metrics::{summarise, youden_threshold};
use crate::model::DenseNet;
use crate::preprocess::{batch_tensor, gray_to_chw};
use crate::subgroups::{FamilySpecificity, describe, normals_by_family};
use crate::weights::codec::{self, Precision};
use anyhow::Context;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Set by the Ctrl-C handler; the loop saves a checkpoint and returns at the next batch.
pub static STOP: AtomicBool = AtomicBool::new(false);

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
        let (model, _) = crate::weights::import::import_torchvision(path, &config.model, device)?;
        Ok((model, true))
    }
}

/// Balanced class weights (`n / (classes · n_c)`), or all 1 when the run turns them off.
fn class_weights(config: &TrainConfig, train: &PlaneSet, classes: usize) -> Vec<f32> {
    (0..classes)
        .map(|class| {
            let count = train.labels.iter().filter(|&&l| l == class).count();
            if config.class_weights {
                train.labels.len() as f32 / (classes as f32 * count.max(1) as f32)
            } else {
                1.0
            }
        })
        .collect()
}

/// What stays fixed for the whole run.
struct Run<'a> {
    config: &'a TrainConfig,
    files: &'a RunFiles,
    data: &'a TrainingData,
    /// Training (with autodiff) and validation devices of the same backend.
    device: Device,
    val_device: Device,
    norm: Normalisation,
    class_weights: Vec<f32>,
    positive: usize,
    /// With `--schedule cosine`: the rate of every step.
    cosine: Option<Cosine>,
}

/// How an epoch's training pass ended.
enum EpochEnd {
    /// Every batch done, at this rate.
    Done { images_per_second: f64 },
    /// Ctrl-C: a checkpoint with this state was saved mid-epoch.
    Interrupted(TrainState),
}

/// The validation of one epoch: no augmentation, the card's input size.
struct Validation {
    scores: Vec<f32>,
    truth: Vec<bool>,
    loss: f64,
    /// At the raw 0.5.
    metrics: TestMetrics,
    /// Specificity at 0.5 of the negatives, and how many, by file-name family (`IM-…`,
    /// `NORMAL2-IM-…`): the test set's shift sits in one family.
    normals_by_family: BTreeMap<String, FamilySpecificity>,
}

impl Run<'_> {
    /// One pass over the training images (from `state.batch`, after a mid-epoch resume),
    /// checkpointing every `checkpoint_minutes` and at Ctrl-C. The model is moved through
    /// (the optimizer updates parameters it owns alone in place); the weight average, if any,
    /// follows every step.
    fn train_epoch(
        &self,
        mut model: DenseNet,
        optim: &mut ModuleOptimizer,
        ema: &mut Option<Ema>,
        state: &mut TrainState,
        last_checkpoint: &mut Instant,
    ) -> anyhow::Result<(DenseNet, EpochEnd)> {
        let (config, train) = (self.config, &self.data.train);
        let (epoch, size) = (state.epoch, config.image_size);
        let batches = train.planes.len().div_ceil(config.batch_size);
        let order = config
            .sampling
            .epoch_order(&train.labels, config.seed.wrapping_add(epoch as u64));
        let bar = progress_bar(batches as u64, &format!("epoch {}", epoch + 1));
        let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        bar.set_position(state.batch as u64);
        let started = Instant::now();
        let mut images_this_session = 0usize;
        for batch in state.batch..batches {
            let end = ((batch + 1) * config.batch_size).min(order.len());
            let indices = &order[batch * config.batch_size..end];
            let mut pixels: Vec<f32> = indices
                .par_iter()
                .flat_map_iter(|&i| {
                    // One RNG per (epoch, image): augmentation depends on neither thread order
                    // nor resumes.
                    let seed = config.seed ^ ((epoch as u64) << 32) ^ i as u64;
                    let mut rng = StdRng::seed_from_u64(seed);
                    let plane = config
                        .augmentation
                        .apply(&train.planes[i], size, size, &mut rng);
                    gray_to_chw(&plane, &self.norm)
                })
                .collect();
            let labels: Vec<usize> = indices.iter().map(|&i| train.labels[i]).collect();
            let targets = self.targets(&mut pixels, &labels, epoch, batch);
            let logits = model.forward(batch_tensor(pixels, size, &self.device));
            let loss = soft_target_loss(logits, &targets, &self.class_weights, &self.device);
            let value: f32 = loss.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            if let Some(cosine) = &self.cosine {
                state.learning_rate = cosine.rate_at(epoch * batches + batch);
            }
            model = optim.step(state.learning_rate, model, grads);
            if let Some(ema) = ema.as_mut() {
                ema.update(&model);
            }
            state.batch = batch + 1;
            state.images_seen += indices.len();
            state.epoch_loss_sum += value as f64 * indices.len() as f64;
            state.epoch_loss_count += indices.len();
            images_this_session += indices.len();
            let rate = images_this_session as f64 / started.elapsed().as_secs_f64();
            let mean_loss = state.epoch_loss_sum / state.epoch_loss_count as f64;
            bar.set_message(format!("loss {mean_loss:.4} | {rate:.2} img/s"));
            bar.inc(1);
            if !on_terminal && (batch + 1) % 25 == 0 {
                // No terminal (a background run writing to a log): a plain line now and then.
                eprintln!(
                    "epoch {} batch {}/{batches}: loss {mean_loss:.4}, {rate:.2} img/s",
                    epoch + 1,
                    batch + 1,
                );
            }
            let stop = STOP.load(Ordering::SeqCst);
            let due = last_checkpoint.elapsed().as_secs_f64() > config.checkpoint_minutes * 60.0;
            if stop || due {
                // The epoch's time so far goes into the checkpoint; the running state adds the
                // whole epoch's time when the epoch ends.
                let saved = TrainState {
                    train_seconds: state.train_seconds + started.elapsed().as_secs_f64(),
                    ..state.clone()
                };
                save_checkpoint(self.files, &model, optim, ema.as_ref(), &saved)?;
                *last_checkpoint = Instant::now();
                if stop {
                    bar.abandon_with_message(
                        "interrupted: checkpoint saved; continue with --resume",
                    );
                    return Ok((model, EpochEnd::Interrupted(saved)));
                }
            }
        }
        bar.finish();
        let elapsed = started.elapsed().as_secs_f64();
        state.train_seconds += elapsed;
        let images_per_second = images_this_session as f64 / elapsed;
        Ok((model, EpochEnd::Done { images_per_second }))
    }

    /// The batch's targets: its labels, blended by mixup (which changes `pixels` too, from a
    /// seed of its own per batch so resumes repeat it) and smoothed, as the run asks.
    fn targets(&self, pixels: &mut [f32], labels: &[usize], epoch: usize, batch: usize) -> Targets {
        let classes = self.class_weights.len();
        let targets = match &self.config.mixup {
            Some(mixup) => {
                let seed = self.config.seed
                    ^ 0x6d69_7875_0000_0000
                    ^ ((epoch as u64) << 24)
                    ^ batch as u64;
                let (share, partner) =
                    mixup.blend(pixels, labels.len(), &mut StdRng::seed_from_u64(seed));
                Targets::mixed(labels, &partner, share, classes)
            }
            None => Targets::hard(labels, classes),
        };
        targets.smoothed(self.config.label_smoothing)
    }

    /// The clean and (if the run has one) the stressed validation of `model`.
    fn validate_both(&self, model: &DenseNet) -> anyhow::Result<(Validation, Option<Validation>)> {
        let clean = self.validate(model, &self.data.val)?;
        let stressed = match &self.data.stressed_val {
            Some(set) => Some(self.validate(model, set)?),
            None => None,
        };
        Ok((clean, stressed))
    }

    /// Scores the validation images with `model` (already without autodiff).
    fn validate(&self, model: &DenseNet, val: &PlaneSet) -> anyhow::Result<Validation> {
        let scores = positive_scores(
            model,
            val,
            &self.norm,
            self.config.batch_size,
            self.positive,
            &self.val_device,
        )?;
        let truth: Vec<bool> = val.labels.iter().map(|&l| l == self.positive).collect();
        let loss = scores
            .iter()
            .zip(&truth)
            .map(|(&p, &y)| -((if y { p } else { 1.0 - p }).max(1e-7) as f64).ln())
            .sum::<f64>()
            / scores.len().max(1) as f64;
        let metrics = summarise(&scores, &truth, 0.5);
        let normals_by_family = normals_by_family(&val.paths, &scores, &truth, 0.5);
        Ok(Validation {
            scores,
            truth,
            loss,
            metrics,
            normals_by_family,
        })
    }

    /// Appends the epoch's validations to validation.jsonl; `live` holds the live weights' pair
    /// when the others are a weight average.
    fn log_validations(
        &self,
        epoch: usize,
        clean: &Validation,
        stressed: Option<&Validation>,
        live: Option<&(Validation, Option<Validation>)>,
    ) -> anyhow::Result<()> {
        let summary = |v: &Validation| {
            serde_json::json!({
                "loss": v.loss,
                "metrics_at_0.5": v.metrics,
                "youden_threshold": youden_threshold(&v.scores, &v.truth),
                "normal_specificity_by_family": v.normals_by_family,
            })
        };
        let mut line = serde_json::json!({
            "epoch": epoch,
            "clean": summary(clean),
            "stressed": stressed.map(summary),
        });
        if let Some((clean, stressed)) = live {
            line["live"] = serde_json::json!({
                "clean": summary(clean),
                "stressed": stressed.as_ref().map(summary),
            });
        }
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.files.validation_log())?;
        writeln!(log, "{line}")?;
        Ok(())
    }

    /// Appends the epoch to metrics.csv and redraws the training curves.
    fn record(&self, record: &EpochRecord) -> anyhow::Result<()> {
        let files = self.files;
        let mut csv = std::fs::OpenOptions::new()
            .append(true)
            .open(files.metrics())?;
        writeln!(csv, "{}", record.csv_line())?;
        drop(csv);
        // A plot is a convenience: failing to draw one must not stop a long run.
        if let Err(e) = history::read(&files.metrics())
            .and_then(|rows| plots::training_curves(&rows, &files.curves()))
        {
            eprintln!(
                "warning: could not draw {}: {e:#}",
                files.curves().display()
            );
        }
        Ok(())
    }

    /// `best.safetensors` and its card, with the Youden threshold of `selection` (the stressed
    /// validation when the run has one, else the clean one) and its metrics there.
    fn save_best(
        &self,
        model: &DenseNet,
        selection: &Validation,
        epoch: usize,
    ) -> anyhow::Result<()> {
        let (config, data) = (self.config, self.data);
        let (scores, truth) = (&selection.scores, &selection.truth);
        let threshold = youden_threshold(scores, truth);
        let mut card = ModelCard::new(
            "pneumoscope-densenet",
            &config.model,
            data.classes.clone(),
            config.image_size,
        );
        card.threshold = threshold;
        card.metrics.validation = Some(summarise(scores, truth, threshold));
        card.training.epochs = epoch as f32;
        card.training.data = format!(
            "{} ({} training images)",
            config.data.display(),
            data.train.planes.len()
        );
        let selected_on = if data.stressed_val.is_some() {
            "; epoch and threshold chosen on its stressed copy (intensity, contrast, gamma, crop, border)"
        } else {
            ""
        };
        card.training.split = format!(
            "validation: {} images, {}{selected_on}",
            data.val.planes.len(),
            data.split_note
        );
        card.weights = WeightsInfo {
            file: "best.safetensors".into(),
            format: codec::FORMAT_F32.into(),
            dtype: "f32".into(),
            ..Default::default()
        };
        write_atomic(
            &self.files.best_weights(),
            &codec::encode(model, Precision::F32),
        )?;
        write_atomic(&self.files.best_card(), card.to_json().as_bytes())
    }
}

/// Trains (or resumes) the run in `config.out` on `backend`; `on_epoch` sees every finished epoch
/// (after its row is in metrics.csv and its plot is drawn). Returns the final state.
pub fn train(
    config: TrainConfig,
    resume: bool,
    backend: TrainBackend,
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
    let data = dataset::load(&config, &files)?;
    let classes = data.classes.len();
    anyhow::ensure!(
        config.model.num_outputs == if classes == 2 { 1 } else { classes },
        "the model has {} outputs but the data has {classes} classes",
        config.model.num_outputs
    );
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
    let mut ema = config.ema_decay.map(|decay| Ema::new(&model, decay));
    if resume {
        (model, optim, state) = load_checkpoint(&files, model, optim, ema.as_mut())?;
        eprintln!(
            "resuming at epoch {} batch {} (lr {:.2e})",
            state.epoch + 1,
            state.batch,
            state.learning_rate
        );
    } else {
        std::fs::write(files.metrics(), format!("{}\n", history::CSV_HEADER))?;
    }
    let run = Run {
        config: &config,
        files: &files,
        data: &data,
        class_weights: class_weights(&config, &data.train, classes),
        device,
        val_device,
        norm: Normalisation::imagenet(),
        positive: classes - 1,
        cosine: (config.schedule == LearningRateSchedule::Cosine).then(|| Cosine {
            start: config.learning_rate,
            floor: config.min_learning_rate,
            steps: config.epochs * data.train.planes.len().div_ceil(config.batch_size),
        }),
    };
    let early_stopping = EarlyStopping {
        patience: config.early_stopping_patience,
    };
    let plateau = Plateau {
        patience: config.plateau_patience,
        factor: config.plateau_factor,
        min_learning_rate: config.min_learning_rate,
    };
    let mut last_checkpoint = Instant::now();

    while state.epoch < config.epochs && !state.finished {
        let epoch = state.epoch + 1;
        if transfer {
            // Transfer learning: the head alone first, then also the last two dense blocks.
            let frozen = state.epoch < config.frozen_epochs;
            model = model.freeze_backbone_except_last(if frozen { 0 } else { 2 });
        }
        let end;
        (model, end) = run.train_epoch(
            model,
            &mut optim,
            &mut ema,
            &mut state,
            &mut last_checkpoint,
        )?;
        let images_per_second = match end {
            EpochEnd::Done { images_per_second } => images_per_second,
            EpochEnd::Interrupted(saved) => return Ok(saved),
        };
        let train_loss = state.epoch_loss_sum / state.epoch_loss_count.max(1) as f64;

        // With a weight average, the average is what is selected and saved; the live weights
        // are validated beside it, as the record of what averaging changed.
        let (eval_model, live) = match &ema {
            Some(ema) => (ema.model.clone(), Some(run.validate_both(&model.valid())?)),
            None => (model.valid(), None),
        };
        let (validation, stressed) = run.validate_both(&eval_model)?;
        run.log_validations(epoch, &validation, stressed.as_ref(), live.as_ref())?;
        if let Some((_, Some(live))) = &live {
            eprintln!(
                "epoch {epoch}: live weights (not the average): stressed val AUC {:.4}, spec {:.4}",
                live.metrics.roc_auc, live.metrics.specificity
            );
        }
        if let Some(stressed) = &stressed {
            let m = &stressed.metrics;
            eprintln!(
                "epoch {epoch}: stressed val AUC {:.4}, acc {:.4}, sens {:.4}, spec {:.4}; normals' specificity by family: {}",
                m.roc_auc,
                m.accuracy,
                m.sensitivity,
                m.specificity,
                describe(&stressed.normals_by_family)
            );
        }
        // The clean split is saturated: with a stressed copy, the best epoch and its threshold
        // are chosen there.
        let selection = stressed.as_ref().unwrap_or(&validation);
        let metrics = &validation.metrics;
        eprintln!(
            "epoch {epoch}: train loss {train_loss:.4}, val loss {:.4}, val AUC {:.4}, acc {:.4}, sens {:.4}, spec {:.4}, lr {:.2e}, {images_per_second:.2} img/s",
            validation.loss,
            metrics.roc_auc,
            metrics.accuracy,
            metrics.sensitivity,
            metrics.specificity,
            state.learning_rate
        );
        let record = EpochRecord {
            epoch,
            train_loss,
            val_loss: validation.loss,
            val_auc: metrics.roc_auc,
            val_accuracy: metrics.accuracy,
            val_sensitivity: metrics.sensitivity,
            val_specificity: metrics.specificity,
            learning_rate: state.learning_rate,
            images_per_second,
        };
        run.record(&record)?;
        on_epoch(&files, &record);

        if early_stopping.observe(&mut state.best, epoch, selection.metrics.roc_auc) {
            run.save_best(&eval_model, selection, epoch)?;
        }
        let rate = state.learning_rate;
        if config.schedule == LearningRateSchedule::Plateau {
            state.learning_rate =
                plateau.next_learning_rate(&mut state.plateau, validation.loss, rate);
        }
        if state.learning_rate < rate {
            eprintln!(
                "validation loss plateaued: learning rate → {:.2e}",
                state.learning_rate
            );
        }
        state.epoch += 1;
        state.batch = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_loss_count = 0;
        if early_stopping.should_stop(&state.best) {
            eprintln!(
                "early stopping: no validation AUC gain for {} epochs",
                state.best.epochs_without_improvement
            );
            state.finished = true;
        }
        save_checkpoint(&files, &model, &optim, ema.as_ref(), &state)?;
        last_checkpoint = Instant::now();
    }
    state.finished = true;
    save_checkpoint(&files, &model, &optim, ema.as_ref(), &state)?;
    Ok(state)
}
