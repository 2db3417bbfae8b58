//! `pneumoscope export`: trained weights → the shipped int8 release (`pneumoscope::train::export`),
//! optionally recorded in MLflow.

use crate::options::OodArgs;
use crate::tracking::{self, TrackingArgs, warn_on_error};
use indicatif::ProgressBar;
use pneumoscope::card::TestMetrics;
use pneumoscope::subgroups::describe;
use pneumoscope::train::export::{ExportRequest, Exported, export};
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
    ood: OodArgs,
    /// With --mlflow, the weights, card, report and plots are added to the training run's MLflow
    /// run (from the run folder's mlflow.json), or to a new run.
    #[command(flatten)]
    tracking: TrackingArgs,
}

fn line(name: &str, metrics: &TestMetrics) -> String {
    format!(
        "{name:>5}: acc {:.4}  sens {:.4}  spec {:.4}  prec {:.4}  f1 {:.4}  auc {:.4}",
        metrics.accuracy,
        metrics.sensitivity,
        metrics.specificity,
        metrics.precision,
        metrics.f1,
        metrics.roc_auc
    )
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let bar = ProgressBar::no_length();
    let request = ExportRequest {
        card: &args.card,
        test: &args.test,
        out: &args.out,
        version: &args.version,
        recipe: args.recipe.clone(),
        compute: args.compute.clone(),
        batch_size: args.batch_size,
        ood_data: args.ood_data.as_deref(),
        ood: (&args.ood).into(),
    };
    let exported = export(request, |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    println!(
        "{}\n{}\nmax |Δprobability| f32 → int8 over {} test images: {:.5}",
        line("f32", &exported.f32.metrics),
        line("int8", &exported.int8.metrics),
        exported.f32.scores.len(),
        exported.max_change,
    );
    println!(
        "int8: normals' specificity by family: {}; calibration error (ECE) {:.4}",
        describe(&exported.int8.normals_by_family),
        exported.int8.calibration_error
    );
    log_to_mlflow(&args, &exported)?;
    eprintln!(
        "wrote {} ({} bytes), {}, model-card.json, classification_report.txt, quantization.json, confusion_matrix.png, roc.png and reliability.png to {}",
        exported.weights_file,
        exported.weights_bytes,
        exported
            .card
            .ood
            .as_ref()
            .map(|o| o.file.as_str())
            .unwrap_or(""),
        args.out.display()
    );
    Ok(())
}

/// With --mlflow: the test metrics and every file written, in the training run's MLflow run.
fn log_to_mlflow(args: &Args, exported: &Exported) -> anyhow::Result<()> {
    let run_folder = args.card.parent().unwrap_or(Path::new("."));
    let run_name = format!("export-v{}", args.version);
    let Some(run) = tracking::open(&args.tracking, run_folder, &run_name)? else {
        return Ok(());
    };
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
    let metrics: Vec<(String, f64)> = named("test_int8", &exported.int8.metrics)
        .into_iter()
        .chain(named("test_f32", &exported.f32.metrics))
        .collect();
    let metrics: Vec<(&str, f64)> = metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    warn_on_error("test metrics", run.log_metrics(&metrics, 0));
    for file in &exported.files {
        warn_on_error("artefact upload", run.log_artifact(file, "export"));
    }
    warn_on_error("run status", run.set_status("FINISHED"));
    Ok(())
}
