use crate::eval::{classification_report, evaluate, write_plots};
use crate::fit_ood;
use crate::tracking::{self, TrackingArgs, warn_on_error};
use anyhow::Context;
use burn::prelude::Device;
use pneumoscope::card::{ModelCard, TestMetrics, WeightsInfo};
use pneumoscope::predict::Pipeline;
use pneumoscope::weights::{codec, sha256_hex};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Card of the trained f32 weights (a run's best-card.json).
    #[arg(long)]
    card: PathBuf,
    /// Official test folder: the exported int8 model is measured on it and the card records it.
    #[arg(long)]
    test: PathBuf,
    /// Output folder (the shipped model lives in weights/).
    #[arg(long, default_value = "weights")]
    out: PathBuf,
    /// Version string written to the card and the file name.
    #[arg(long, default_value = "1")]
    version: String,
    /// Free text for the card's training section: how it was trained (recipe, compute).
    #[arg(long)]
    recipe: Option<String>,
    #[arg(long)]
    compute: Option<String>,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Dataset root with `train/` for the OOD statistics (default: the training run's, from
    /// config.json beside --card, else the folder holding --test).
    #[arg(long)]
    ood_data: Option<PathBuf>,
    #[command(flatten)]
    ood: fit_ood::Settings,
    /// With --mlflow, the weights, card, report and plots are added to the training run's MLflow
    /// run (from the run folder's mlflow.json), or to a new run.
    #[command(flatten)]
    tracking: TrackingArgs,
}

fn line(name: &str, m: &TestMetrics) -> String {
    format!(
        "{name:>5}: acc {:.4}  sens {:.4}  spec {:.4}  prec {:.4}  f1 {:.4}  auc {:.4}",
        m.accuracy, m.sensitivity, m.specificity, m.precision, m.f1, m.roc_auc
    )
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let device = Device::flex();
    let f32_pipeline = Pipeline::from_card_file(&args.card, &device)?;
    let int8 = codec::encode(&f32_pipeline.model, codec::Precision::Int8);
    let mut card: ModelCard = f32_pipeline.card.clone();
    card.version = args.version.clone();
    let file = format!(
        "pneumoscope-densenet{}-v{}.int8.safetensors",
        card.architecture.depth, args.version
    );
    card.weights = WeightsInfo {
        file: file.clone(),
        format: codec::FORMAT_INT8.into(),
        dtype: "int8 conv kernels (per-output-channel scales), f32 batch-norm and classifier"
            .into(),
        bytes: int8.len(),
        sha256: sha256_hex(&int8),
    };
    if let Some(r) = args.recipe {
        card.training.recipe = r;
    }
    if let Some(c) = args.compute {
        card.training.compute = c;
    }

    eprintln!("measuring f32 and int8 on {}", args.test.display());
    let (f32_metrics, f32_scores, _) = evaluate(&f32_pipeline, &args.test, args.batch_size)?;
    let int8_pipeline = Pipeline::load(card.clone(), &int8, &device)?;
    let (int8_metrics, int8_scores, truth) = evaluate(&int8_pipeline, &args.test, args.batch_size)?;
    let max_change = f32_scores
        .iter()
        .zip(&int8_scores)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    println!(
        "{}\n{}\nmax |Δprobability| f32 → int8 over {} test images: {max_change:.5}",
        line("f32", &f32_metrics),
        line("int8", &int8_metrics),
        f32_scores.len()
    );
    card.metrics.test = Some(int8_metrics.clone());

    std::fs::create_dir_all(&args.out)?;
    // The OOD statistics of the int8 model, fitted on the training images.
    let ood_data = fit_ood::data_root(&args.card, args.ood_data.as_deref(), args.test.parent())
        .context("no training data for the OOD statistics: pass --ood-data DIR (the dataset root with train/)")?;
    fit_ood::fit_and_record(
        &int8_pipeline,
        &args.card,
        &ood_data,
        &args.ood,
        &args.out,
        &mut card,
    )?;
    std::fs::write(args.out.join(&file), &int8)
        .with_context(|| format!("writing {}", args.out.join(&file).display()))?;
    std::fs::write(args.out.join("model-card.json"), card.to_json())?;
    std::fs::write(
        args.out.join("classification_report.txt"),
        classification_report(&int8_metrics, &card.labels, card.threshold),
    )?;
    std::fs::write(
        args.out.join("quantization.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "f32": f32_metrics, "int8": int8_metrics, "max_abs_probability_change": max_change, "bytes_int8": int8.len(),
        }))?,
    )?;
    write_plots(&args.out, &int8_metrics, &int8_scores, &truth, &card)?;
    let run_folder = args.card.parent().unwrap_or(Path::new("."));
    if let Some(run) = tracking::open(
        &args.tracking,
        run_folder,
        &format!("export-v{}", args.version),
    )? {
        let named = |prefix: &str, m: &TestMetrics| {
            [
                ("accuracy", m.accuracy),
                ("sensitivity", m.sensitivity),
                ("specificity", m.specificity),
                ("precision", m.precision),
                ("f1", m.f1),
                ("roc_auc", m.roc_auc),
            ]
            .map(|(k, v)| (format!("{prefix}_{k}"), v))
        };
        let metrics: Vec<(String, f64)> = named("test_int8", &int8_metrics)
            .into_iter()
            .chain(named("test_f32", &f32_metrics))
            .collect();
        let metrics: Vec<(&str, f64)> = metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        warn_on_error("test metrics", run.log_metrics(&metrics, 0));
        let ood_file = card
            .ood
            .as_ref()
            .map(|o| o.file.clone())
            .unwrap_or_default();
        for name in [
            file.as_str(),
            ood_file.as_str(),
            "model-card.json",
            "classification_report.txt",
            "quantization.json",
            "confusion_matrix.png",
            "roc.png",
        ] {
            warn_on_error(
                "artefact upload",
                run.log_artifact(&args.out.join(name), "export"),
            );
        }
        warn_on_error("run status", run.set_status("FINISHED"));
    }
    eprintln!(
        "wrote {} ({} bytes), {}, model-card.json, classification_report.txt, quantization.json, confusion_matrix.png and roc.png to {}",
        file,
        int8.len(),
        card.ood.as_ref().map(|o| o.file.as_str()).unwrap_or(""),
        args.out.display()
    );
    Ok(())
}
