//! Training end to end on a handful of real X-rays (tiny architecture, 64 px): the loss falls,
//! a run warm-started from its weights keeps what it learned, a run stopped after one epoch
//! then resumed (or interrupted mid-epoch with a weight average and the cosine schedule) ends
//! bit-identical to an uninterrupted one, and our training kernels give burn's
//! generic ops' loss curve.

mod common;

use pneumoscope::model::DenseNetConfig;
use pneumoscope::train::augment::Augmentation;
use pneumoscope::train::backend::TrainBackend;
use pneumoscope::train::checkpoint::{RunFiles, TrainState};
use pneumoscope::train::config::{Recipe, TrainConfig};
use pneumoscope::train::history;
use pneumoscope::train::run::train;
use pneumoscope::weights::codec;
use std::path::{Path, PathBuf};

/// burn's random generator is process-wide: runs in this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn config(out: &Path, epochs: usize) -> TrainConfig {
    TrainConfig {
        data: common::data::data_dir(),
        out: out.to_path_buf(),
        model: DenseNetConfig::tiny(1),
        image_size: 64,
        epochs,
        batch_size: 8,
        learning_rate: 3e-3,
        plateau_patience: 10,
        plateau_factor: 0.5,
        early_stopping_patience: 100,
        val_fraction: 0.25,
        seed: 7,
        frozen_epochs: 0,
        checkpoint_minutes: 60.0,
        limit: 64,
        ..TrainConfig::default()
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pneumoscope-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn files(dir: &Path) -> RunFiles {
    RunFiles {
        dir: dir.to_path_buf(),
    }
}

/// The training loss of each epoch, read from metrics.csv as the crate reads it.
fn train_losses(dir: &Path) -> Vec<f64> {
    history::read(&files(dir).metrics())
        .unwrap()
        .iter()
        .map(|r| r.train_loss)
        .collect()
}

/// The checkpoint's parameters, serialised canonically (burnpack files also carry parameter ids).
fn weights(dir: &Path) -> Vec<u8> {
    checkpoint_model(dir, "model.bpk")
}

/// One model file of the checkpoint (`model.bpk`, or the weight average `ema.bpk`), canonically.
fn checkpoint_model(dir: &Path, name: &str) -> Vec<u8> {
    use burn::store::{BurnpackStore, ModuleSnapshot};
    let mut model = DenseNetConfig::tiny(1).init(&burn::prelude::Device::flex());
    model
        .load_from(&mut BurnpackStore::from_file(
            files(dir).checkpoint().join(name),
        ))
        .unwrap();
    codec::encode(&model, codec::Precision::F32)
}

#[test]
fn loss_falls_on_real_xrays() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("loss");
    let mut run_config = config(&dir, 6);
    run_config.augmentation = Augmentation::none();
    train(run_config, false, TrainBackend::Flex, |_, _| {}).unwrap();
    let losses = train_losses(&dir);
    assert_eq!(losses.len(), 6);
    assert!(
        losses[5] < losses[0] * 0.9,
        "training loss did not fall: {losses:?}"
    );
    for file in [
        "config.json",
        "split.json",
        "best.safetensors",
        "best-card.json",
        "checkpoint/state.json",
    ] {
        assert!(dir.join(file).exists(), "{file} missing");
    }

    // A warm start from that run's weights (our own container, not a torchvision checkpoint)
    // begins where it ended, with every layer training: its first epoch is already far below
    // the fresh run's first epoch.
    let warm = fresh_dir("warm");
    let mut run_config = config(&warm, 1);
    run_config.augmentation = Augmentation::none();
    run_config.init = Some(dir.join("best.safetensors"));
    train(run_config, false, TrainBackend::Flex, |_, _| {}).unwrap();
    let warm_losses = train_losses(&warm);
    assert!(
        warm_losses[0] < losses[0] * 0.9,
        "warm start lost the trained weights: {warm_losses:?} vs fresh {losses:?}"
    );
}

/// The same run with our training kernels (`flex`) and with burn's generic ops (`flex-generic`):
/// the same training loss (the mean over the epoch's 8 steps) and validation loss after one
/// epoch, up to float rounding. (Later epochs drift apart by more: Adam divides each step by the
/// gradient's own running size, so rounding-level differences in tiny gradients become whole
/// steps; 1.3e-4 after 16 steps here.)
#[test]
fn our_training_kernels_give_the_generic_loss_curve() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let curve = |backend: TrainBackend| {
        let dir = fresh_dir(&format!("{backend:?}"));
        train(config(&dir, 1), false, backend, |_, _| {}).unwrap();
        let rows = history::read(&files(&dir).metrics()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        rows.iter()
            .flat_map(|r| [r.train_loss, r.val_loss])
            .collect::<Vec<_>>()
    };
    let generic = curve(TrainBackend::FlexGeneric);
    let ours = curve(TrainBackend::Flex);
    assert_eq!(ours.len(), 2);
    for (epoch, (a, b)) in ours.chunks(2).zip(generic.chunks(2)).enumerate() {
        for (what, a, b) in [("train", a[0], b[0]), ("validation", a[1], b[1])] {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "epoch {}: {what} loss {a} (ours) vs {b} (generic): {ours:?} vs {generic:?}",
                epoch + 1
            );
        }
    }
}

#[test]
fn resume_continues_exactly() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let straight = fresh_dir("straight");
    train(config(&straight, 2), false, TrainBackend::Flex, |_, _| {}).unwrap();

    let resumed = fresh_dir("resumed");
    train(config(&resumed, 1), false, TrainBackend::Flex, |_, _| {}).unwrap();
    // Ask the stopped run for one more epoch, as a user would after an interruption.
    let run = files(&resumed);
    let mut saved = run.saved_config().unwrap();
    assert_eq!(saved.epochs, 1);
    saved.epochs = 2;
    std::fs::write(run.config(), serde_json::to_string_pretty(&saved).unwrap()).unwrap();
    let state_file = run.checkpoint().join("state.json");
    let mut state: TrainState =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    assert!(state.finished);
    state.finished = false;
    std::fs::write(&state_file, serde_json::to_string_pretty(&state).unwrap()).unwrap();
    train(config(&resumed, 2), true, TrainBackend::Flex, |_, _| {}).unwrap();

    assert_eq!(train_losses(&straight), train_losses(&resumed));
    assert!(
        weights(&straight) == weights(&resumed),
        "resumed weights differ from the uninterrupted run"
    );
}

/// A run with a weight average and the cosine schedule, interrupted one batch into its second
/// epoch (as Ctrl-C does) and resumed, ends as the uninterrupted run: losses, live weights, the
/// average and the schedule's rates.
#[test]
fn an_interrupted_run_resumes_its_weight_average_and_cosine_schedule_exactly() {
    use pneumoscope::train::run::STOP;
    use pneumoscope::train::schedule::LearningRateSchedule;
    use std::sync::atomic::Ordering;
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let averaged = |out: &Path| TrainConfig {
        ema_decay: Some(0.9),
        schedule: LearningRateSchedule::Cosine,
        ..config(out, 2)
    };
    let straight = fresh_dir("straight-ema");
    train(averaged(&straight), false, TrainBackend::Flex, |_, _| {}).unwrap();

    let resumed = fresh_dir("resumed-ema");
    let stop_after_first = |_: &RunFiles, record: &history::EpochRecord| {
        if record.epoch == 1 {
            STOP.store(true, Ordering::SeqCst);
        }
    };
    let state = train(
        averaged(&resumed),
        false,
        TrainBackend::Flex,
        stop_after_first,
    );
    STOP.store(false, Ordering::SeqCst);
    let state = state.unwrap();
    assert_eq!(
        (state.epoch, state.batch),
        (1, 1),
        "stopped one batch into epoch 2"
    );
    train(averaged(&resumed), true, TrainBackend::Flex, |_, _| {}).unwrap();

    let rates = |dir: &Path| -> Vec<f64> {
        history::read(&files(dir).metrics())
            .unwrap()
            .iter()
            .map(|r| r.learning_rate)
            .collect()
    };
    assert_eq!(train_losses(&straight), train_losses(&resumed));
    assert_eq!(rates(&straight), rates(&resumed));
    assert!(rates(&straight)[1] < rates(&straight)[0], "cosine decay");
    assert!(
        weights(&straight) == weights(&resumed),
        "live weights differ"
    );
    let average = checkpoint_model(&straight, "ema.bpk");
    assert!(
        average == checkpoint_model(&resumed, "ema.bpk"),
        "resumed weight average differs from the uninterrupted run's"
    );
    assert!(
        average != weights(&straight),
        "the average is not the live weights"
    );
    // The live weights are validated beside the average every epoch.
    let log = std::fs::read_to_string(files(&straight).validation_log()).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert!(first["live"]["clean"]["loss"].is_f64(), "{first}");
}

#[test]
fn refuses_to_overwrite_a_run_and_reports_missing_data() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("guard");
    let mut run_config = config(&dir, 1);
    run_config.data = PathBuf::from("/nonexistent/data");
    let err = train(run_config, false, TrainBackend::Flex, |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a folder"), "{err}");

    // A folder that holds a checkpoint is an earlier run: a fresh start must not replace it.
    std::fs::create_dir_all(files(&dir).checkpoint()).unwrap();
    let err = train(config(&dir, 1), false, TrainBackend::Flex, |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("already holds a run"), "{err}");
}

#[test]
fn shift_robust_recipe_selects_on_a_stressed_validation() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("robust");
    let mut run_config = config(&dir, 2);
    Recipe::ShiftRobust.apply(&mut run_config);
    assert!(run_config.stressed_validation && !run_config.class_weights);
    train(run_config, false, TrainBackend::Flex, |_, _| {}).unwrap();
    let log = std::fs::read_to_string(files(&dir).validation_log()).unwrap();
    let epochs: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(epochs.len(), 2);
    for (epoch, line) in epochs.iter().enumerate() {
        assert_eq!(line["epoch"], epoch + 1);
        for part in ["clean", "stressed"] {
            let auc = line[part]["metrics_at_0.5"]["roc_auc"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&auc), "{part}: {line}");
        }
        // The validation normals of the training folder are all `IM-…` or `NORMAL2-IM-…`.
        let families = line["stressed"]["normal_specificity_by_family"]
            .as_object()
            .unwrap();
        assert!(
            !families.is_empty() && families.keys().all(|k| k.contains("IM")),
            "{line}"
        );
    }
    let card = std::fs::read_to_string(files(&dir).best_card()).unwrap();
    assert!(card.contains("stressed copy"), "{card}");
    // The stressed copy is fixed: the same run again logs the same first epoch.
    let again = fresh_dir("robust-again");
    let mut run_config = config(&again, 1);
    Recipe::ShiftRobust.apply(&mut run_config);
    train(run_config, false, TrainBackend::Flex, |_, _| {}).unwrap();
    let first = std::fs::read_to_string(files(&again).validation_log()).unwrap();
    assert_eq!(first.lines().next(), log.lines().next());
}

/// `export` of a shift-robust run fits the calibration on the run's stressed validation before
/// measuring test: the card records it with threshold 0.5, and the test metrics it records are
/// those of the calibrated probability at 0.5 (re-measured here through `eval`'s path).
#[test]
fn export_of_a_shift_robust_run_is_calibrated_at_one_half() {
    use pneumoscope::predict::Pipeline;
    use pneumoscope::train::evaluate::evaluate;
    use pneumoscope::train::export::{ExportRequest, export};
    use pneumoscope::train::fit_ood::FitSettings;

    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("robust-export");
    let mut run_config = config(&dir, 1);
    Recipe::ShiftRobust.apply(&mut run_config);
    train(run_config, false, TrainBackend::Flex, |_, _| {}).unwrap();
    let out = dir.join("release");
    let test = common::data::test_data_dir();
    let exported = export(
        ExportRequest {
            card: &files(&dir).best_card(),
            test: &test,
            out: &out,
            version: "0.0.1-test",
            recipe: None,
            compute: None,
            batch_size: 16,
            ood_data: None,
            ood: FitSettings {
                components: 4,
                ..FitSettings::default()
            },
        },
        |_| {},
    )
    .unwrap();
    let card = &exported.card;
    let calibration = card.calibration.as_ref().expect("a calibrated card");
    assert_eq!(card.threshold, 0.5);
    assert!(calibration.slope.is_finite() && calibration.intercept.is_finite());
    assert!(
        calibration.fitted_on.contains("stressed validation"),
        "{calibration:?}"
    );
    // (Its binned ECE need not fall on 17 images: Platt minimises the log loss, not the ECE.)
    assert!(
        (0.0..=1.0).contains(&calibration.ece_after),
        "{calibration:?}"
    );
    // The test normals come in two file-name families (69 `IM-…`, 165 `NORMAL2-IM-…` in the
    // official split).
    let families = &card.metrics.test_normals_by_family;
    assert_eq!(
        families.keys().collect::<Vec<_>>(),
        ["IM", "NORMAL2-IM"],
        "{families:?}"
    );
    assert!(out.join("reliability.png").is_file());

    // The shipped card, loaded as the app and the CLI load it, gives the recorded test metrics.
    let device = burn::prelude::Device::flex();
    let pipeline = Pipeline::from_card_file(&out.join("model-card.json"), &device).unwrap();
    let again = evaluate(&pipeline, &test, 16, |_| {}).unwrap();
    assert_eq!(Some(&again.metrics), card.metrics.test.as_ref());
    assert!(again.scores.iter().all(|p| (0.0..=1.0).contains(p)));
}
