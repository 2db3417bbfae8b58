use crate::eval::{classification_report, evaluate};
use anyhow::Context;
use burn::prelude::Device;
use pneumoscope::card::{ModelCard, TestMetrics, WeightsInfo};
use pneumoscope::predict::Pipeline;
use pneumoscope::weights::{codec, sha256_hex};
use std::path::PathBuf;

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
    let file = format!("pneumoscope-densenet{}-v{}.int8.safetensors", card.architecture.depth, args.version);
    card.weights = WeightsInfo { file: file.clone(), format: codec::FORMAT_INT8.into(), dtype: "int8 conv kernels (per-output-channel scales), f32 batch-norm and classifier".into(), bytes: int8.len(), sha256: sha256_hex(&int8) };
    if let Some(r) = args.recipe { card.training.recipe = r; }
    if let Some(c) = args.compute { card.training.compute = c; }

    eprintln!("measuring f32 and int8 on {}", args.test.display());
    let (f32_metrics, f32_scores, _) = evaluate(&f32_pipeline, &args.test, args.batch_size)?;
    let int8_pipeline = Pipeline::load(card.clone(), &int8, &device)?;
    let (int8_metrics, int8_scores, _) = evaluate(&int8_pipeline, &args.test, args.batch_size)?;
    let max_change = f32_scores.iter().zip(&int8_scores).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    println!("{}\n{}\nmax |Δprobability| f32 → int8 over {} test images: {max_change:.5}", line("f32", &f32_metrics), line("int8", &int8_metrics), f32_scores.len());
    card.metrics.test = Some(int8_metrics.clone());

    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join(&file), &int8).with_context(|| format!("writing {}", args.out.join(&file).display()))?;
    std::fs::write(args.out.join("model-card.json"), card.to_json())?;
    std::fs::write(args.out.join("classification_report.txt"), classification_report(&int8_metrics, &card.labels, card.threshold))?;
    std::fs::write(args.out.join("quantization.json"), serde_json::to_string_pretty(&serde_json::json!({
        "f32": f32_metrics, "int8": int8_metrics, "max_abs_probability_change": max_change, "bytes_int8": int8.len(),
    }))?)?;
    eprintln!("wrote {} ({} bytes) and model-card.json to {}", file, int8.len(), args.out.display());
    Ok(())
}
