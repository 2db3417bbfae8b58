//! `pneumoscope train`: flags → a [`TrainConfig`] (or a run to resume), the training loop
//! (`pneumoscope::train::run`), and the run's MLflow record.

use crate::tracking::{self, TrackingArgs, warn_on_error};
use pneumoscope::mlflow::flatten;
use pneumoscope::model::DenseNetConfig;
use pneumoscope::train::augment::Augmentation;
use pneumoscope::train::backend::TrainBackend;
use pneumoscope::train::checkpoint::RunFiles;
use pneumoscope::train::config::{Recipe, RecipePart, TrainConfig};
use pneumoscope::train::dataset::output_count;
use pneumoscope::train::run::{STOP, train};
use pneumoscope::train::schedule::LearningRateSchedule;
use pneumoscope::train::targets::Mixup;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset root: `DIR/train/{CLASS}/*.jpeg` (+ optional `DIR/val/`); class names come from
    /// the folder names. Two classes → one sigmoid output; N classes → softmax. Not needed with
    /// --resume (the run's config.json names it).
    #[arg(long, required_unless_present = "resume")]
    data: Option<PathBuf>,
    /// Run folder: config, split, metrics.csv, checkpoints, best weights.
    #[arg(long, default_value_os_t = TrainConfig::default().out)]
    out: PathBuf,
    /// Continue the interrupted run in --out exactly where its last checkpoint left it
    /// (all other options are read from its config.json).
    #[arg(long)]
    resume: bool,
    /// Backend to compute on: flex (burn's own, CPU, with our training kernels), flex-generic
    /// (flex with burn's generic ops only: slower, for comparisons) or wgpu (a GPU through
    /// Vulkan / Metal / DX12). Not saved in the run: a --resume may switch.
    #[arg(long, value_enum, default_value_t = TrainBackend::Flex)]
    backend: TrainBackend,
    /// Weights to start from. A torchvision DenseNet checkpoint (e.g. densenet121-a639ec97.pth)
    /// trains the head with a frozen backbone first, then the last two dense blocks; one of our
    /// own `.safetensors` (a release in weights/, a run's best.safetensors) warm-starts every layer,
    /// e.g. to train a released model further at a larger --image-size.
    #[arg(long)]
    init: Option<PathBuf>,
    /// DenseNet depth: 121, 169 or 201.
    #[arg(long, default_value_t = 121)]
    depth: usize,
    /// Use the tiny test architecture instead (seconds per epoch; for smoke tests).
    #[arg(long)]
    tiny: bool,
    /// Model input side in pixels (written to the model card; inference uses the same).
    #[arg(long, default_value_t = TrainConfig::default().image_size)]
    image_size: usize,
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = TrainConfig::default().learning_rate)]
    lr: f64,
    /// Floor for ReduceLROnPlateau; where the cosine schedule ends.
    #[arg(long, default_value_t = TrainConfig::default().min_learning_rate)]
    min_lr: f64,
    /// plateau: lower the rate by --plateau-factor when the validation loss stalls. cosine:
    /// decay it per step from --lr to --min-lr over the run's --epochs.
    #[arg(long, value_enum, default_value_t = TrainConfig::default().schedule)]
    schedule: LearningRateSchedule,
    /// Keep an exponential moving average of the weights with this decay per step (e.g. 0.998)
    /// and validate, select and save it instead of the live weights.
    #[arg(long, value_parser = parse_decay)]
    ema: Option<f64>,
    /// Epochs without validation-loss improvement before the learning rate is multiplied by --plateau-factor.
    #[arg(long, default_value_t = TrainConfig::default().plateau_patience)]
    plateau_patience: usize,
    #[arg(long, default_value_t = TrainConfig::default().plateau_factor)]
    plateau_factor: f64,
    /// Stop after this many epochs without a better validation ROC AUC.
    #[arg(long, default_value_t = TrainConfig::default().early_stopping_patience)]
    early_stopping: usize,
    /// Share of train carved out for validation when DIR/val is missing or too small.
    #[arg(long, default_value_t = TrainConfig::default().val_fraction)]
    val_fraction: f64,
    /// DIR/val is used only if it has at least this many images (the official one has 16).
    #[arg(long, default_value_t = TrainConfig::default().min_val_images)]
    min_val_images: usize,
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// keras: the notebooks' augmentation and class-weighted loss, selection on the clean
    /// validation. shift-robust: wide intensity / contrast / gamma jitter, crops and random
    /// borders on both classes, class-balanced sampling, selection on a stressed copy of the
    /// validation images (see docs/training.md).
    #[arg(long, value_enum, default_value_t = Recipe::Keras)]
    recipe: Recipe,
    /// Turn off augmentation (rotation ±15°, shift ±10 %, zoom ±10 %, flip, brightness 0.8–1.2).
    #[arg(long)]
    no_augment: bool,
    /// Turn off horizontal flips only (the heart is on the left in real radiographs).
    #[arg(long)]
    no_flip: bool,
    /// Turn off class weights (balanced weights counter the 1:3 NORMAL:PNEUMONIA imbalance).
    #[arg(long)]
    no_class_weights: bool,
    /// Turn off one part of --recipe shift-robust, for ablations (repeatable):
    /// intensity-jitter, crops, borders, balanced-sampling.
    #[arg(long, value_enum)]
    without: Vec<RecipePart>,
    /// Label smoothing ε (0–0.5): targets (1 − ε) · onehot + ε / classes.
    #[arg(long, default_value_t = TrainConfig::default().label_smoothing, value_parser = parse_smoothing)]
    label_smoothing: f32,
    /// Mixup with Beta(α, α) shares (e.g. 0.2): each batch blended with itself reversed,
    /// images and targets alike.
    #[arg(long, value_parser = parse_alpha)]
    mixup: Option<f32>,
    /// With a torchvision --init: epochs with the backbone frozen.
    #[arg(long, default_value_t = TrainConfig::default().frozen_epochs)]
    frozen_epochs: usize,
    /// Also checkpoint inside an epoch every this many minutes.
    #[arg(long, default_value_t = TrainConfig::default().checkpoint_minutes)]
    checkpoint_minutes: f64,
    /// Train on at most this many images (0 = all), for quick trials.
    #[arg(long, default_value_t = TrainConfig::default().limit)]
    limit: usize,
    #[command(flatten)]
    tracking: TrackingArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.backend.device()?; // an unavailable backend fails before any data is read
    let config = if args.resume {
        RunFiles {
            dir: args.out.clone(),
        }
        .saved_config()?
    } else {
        fresh_config(&args)?
    };
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130); // second Ctrl-C: leave now
        }
        eprintln!(
            "\nstopping: saving a checkpoint after this batch (Ctrl-C again to quit at once)"
        );
    })?;
    let files = RunFiles {
        dir: config.out.clone(),
    };
    if !args.resume {
        files.ensure_fresh()?;
    }
    let run_name = config
        .out
        .file_name()
        .map_or("pneumoscope".into(), |n| n.to_string_lossy().to_string());
    let mlflow = tracking::open(&args.tracking, &config.out, &run_name)?;
    if let (Some(run), false) = (&mlflow, args.resume) {
        warn_on_error(
            "params",
            run.log_params(&flatten(&serde_json::to_value(&config)?)),
        );
    }
    let result = train(config, args.resume, args.backend, |run_files, epoch| {
        if let Some(run) = &mlflow {
            warn_on_error(
                "metrics",
                run.log_metrics(&epoch.named_metrics(), epoch.epoch),
            );
            warn_on_error("training curves", run.log_artifact(&run_files.curves(), ""));
        }
    });
    if let Some(run) = &mlflow {
        for file in [
            files.config(),
            files.split(),
            files.metrics(),
            files.curves(),
            files.best_card(),
        ] {
            if file.exists() {
                warn_on_error("artefact upload", run.log_artifact(&file, ""));
            }
        }
        let status = match (&result, STOP.load(Ordering::SeqCst)) {
            (Err(_), _) => "FAILED",
            (Ok(_), true) => "KILLED",
            (Ok(_), false) => "FINISHED",
        };
        warn_on_error("run status", run.set_status(status));
    }
    let state = result?;
    if STOP.load(Ordering::SeqCst) {
        eprintln!(
            "interrupted in epoch {} after batch {}: {:.0} s of training so far; continue with --resume --out {}",
            state.epoch + 1,
            state.batch,
            state.train_seconds,
            files.dir.display()
        );
        return Ok(());
    }
    eprintln!(
        "done: {} epochs, best validation AUC {:.4} (epoch {:?}), {:.0} s of training",
        state.epoch, state.best.best_auc, state.best.best_epoch, state.train_seconds
    );
    Ok(())
}

/// The run configuration from the command line (a new run).
fn fresh_config(args: &Args) -> anyhow::Result<TrainConfig> {
    let data = args
        .data
        .clone()
        .expect("clap requires --data without --resume");
    let outputs = output_count(&data)?;
    let model = if args.tiny {
        DenseNetConfig::tiny(outputs)
    } else {
        DenseNetConfig::from_depth(args.depth, outputs)?
    };
    let mut config = TrainConfig {
        data,
        out: args.out.clone(),
        init: args.init.clone(),
        model,
        image_size: args.image_size,
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        min_learning_rate: args.min_lr,
        schedule: args.schedule,
        ema_decay: args.ema,
        plateau_patience: args.plateau_patience,
        plateau_factor: args.plateau_factor,
        early_stopping_patience: args.early_stopping,
        val_fraction: args.val_fraction,
        min_val_images: args.min_val_images,
        seed: args.seed,
        frozen_epochs: args.frozen_epochs,
        checkpoint_minutes: args.checkpoint_minutes,
        limit: args.limit,
        ..TrainConfig::default()
    };
    // The recipe first; the switches below turn parts of it off.
    args.recipe.apply(&mut config);
    if args.no_augment {
        config.augmentation = Augmentation::none();
    }
    config.augmentation.horizontal_flip &= !args.no_flip;
    for part in &args.without {
        part.remove(&mut config);
    }
    config.class_weights &= !args.no_class_weights;
    config.label_smoothing = args.label_smoothing;
    config.mixup = args.mixup.map(|alpha| Mixup { alpha });
    Ok(config)
}

/// A label-smoothing ε: from 0 to 0.5.
fn parse_smoothing(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(epsilon) if (0.0..=0.5).contains(&epsilon) => Ok(epsilon),
        _ => Err(format!(
            "expected a smoothing between 0 and 0.5 (e.g. 0.1), got {text:?}"
        )),
    }
}

/// A mixup α: positive and finite.
fn parse_alpha(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(alpha) if alpha > 0.0 && alpha.is_finite() => Ok(alpha),
        _ => Err(format!(
            "expected a positive mixup alpha (e.g. 0.2), got {text:?}"
        )),
    }
}

/// An EMA decay: strictly between 0 and 1.
fn parse_decay(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(decay) if decay > 0.0 && decay < 1.0 => Ok(decay),
        _ => Err(format!(
            "expected a decay between 0 and 1 (e.g. 0.998), got {text:?}"
        )),
    }
}
