use crate::DeviceChoice;
use indicatif::ProgressBar;
use pneumoscope::card::{ModelCard, TestMetrics};
use pneumoscope::metrics::{roc_curve, summarise};
use pneumoscope::plots;
use pneumoscope::predict::Pipeline;
use pneumoscope::train::data::scan;
use pneumoscope::train::evaluate::score_files;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Model card of the weights to evaluate (the weights file it names sits next to it).
    #[arg(long, default_value = "weights/model-card.json")]
    card: PathBuf,
    /// Labelled folder: `DIR/{CLASS}/*` (e.g. chest_xray/test).
    #[arg(long)]
    data: PathBuf,
    /// Where to write report.json and classification_report.txt (default: next to the card).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
}

/// Scores every image of a labelled folder; returns the metrics at the card's threshold.
pub fn evaluate(
    pipeline: &Pipeline,
    data: &Path,
    batch: usize,
) -> anyhow::Result<(TestMetrics, Vec<f32>, Vec<bool>)> {
    let folder = scan(data)?;
    anyhow::ensure!(
        folder.classes == pipeline.card.labels,
        "the folder's classes {:?} differ from the model's labels {:?}",
        folder.classes,
        pipeline.card.labels
    );
    let files: Vec<PathBuf> = folder.samples.iter().map(|s| s.path.clone()).collect();
    let bar = ProgressBar::new(files.len() as u64);
    let scored = score_files(
        &pipeline.model,
        &pipeline.card,
        &files,
        batch,
        &pipeline.device,
        |n| bar.inc(n as u64),
    );
    bar.finish_and_clear();
    for (p, why) in &scored.skipped {
        eprintln!("warning: skipped {}: {why}", p.display());
    }
    anyhow::ensure!(
        !scored.scores.is_empty(),
        "no readable images in {}",
        data.display()
    );
    let positive = pipeline.card.positive_index();
    let label_of: std::collections::HashMap<&PathBuf, usize> =
        folder.samples.iter().map(|s| (&s.path, s.label)).collect();
    let truth: Vec<bool> = scored
        .paths
        .iter()
        .map(|p| label_of[p] == positive)
        .collect();
    Ok((
        summarise(&scored.scores, &truth, pipeline.card.threshold),
        scored.scores,
        truth,
    ))
}

pub fn classification_report(m: &TestMetrics, labels: &[String], threshold: f32) -> String {
    let [tn, fp] = [m.confusion[0][0], m.confusion[0][1]];
    let [fn_, tp] = [m.confusion[1][0], m.confusion[1][1]];
    let neg_precision = if tn + fn_ > 0 {
        tn as f64 / (tn + fn_) as f64
    } else {
        0.0
    };
    let neg_f1 = if neg_precision + m.specificity > 0.0 {
        2.0 * neg_precision * m.specificity / (neg_precision + m.specificity)
    } else {
        0.0
    };
    format!(
        "threshold {threshold:.4}\n\n{:>12} {:>10} {:>10} {:>10} {:>8}\n{:>12} {:>10.4} {:>10.4} {:>10.4} {:>8}\n{:>12} {:>10.4} {:>10.4} {:>10.4} {:>8}\n\naccuracy {:.4}   ROC AUC {:.4}   images {}\n\nconfusion (rows: true, columns: predicted)\n{:>12} {:>10} {:>10}\n{:>12} {:>10} {:>10}\n{:>12} {:>10} {:>10}\n",
        "",
        "precision",
        "recall",
        "f1",
        "support",
        labels[0],
        neg_precision,
        m.specificity,
        neg_f1,
        tn + fp,
        labels[1],
        m.precision,
        m.sensitivity,
        m.f1,
        fn_ + tp,
        m.accuracy,
        m.roc_auc,
        m.images,
        "",
        labels[0],
        labels[1],
        labels[0],
        tn,
        fp,
        labels[1],
        fn_,
        tp,
    )
}

/// `confusion_matrix.png` and `roc.png` of a measured model, into `out`.
pub fn write_plots(
    out: &Path,
    metrics: &TestMetrics,
    scores: &[f32],
    truth: &[bool],
    card: &ModelCard,
) -> anyhow::Result<()> {
    plots::confusion_matrix(
        &metrics.confusion,
        &card.labels,
        &out.join("confusion_matrix.png"),
    )?;
    let curve: Vec<(f64, f64)> = roc_curve(scores, truth)
        .into_iter()
        .map(|(fpr, tpr, _)| (fpr, tpr))
        .collect();
    let operating_point = (1.0 - metrics.specificity, metrics.sensitivity);
    plots::roc(
        &curve,
        metrics.roc_auc,
        operating_point,
        card.threshold,
        &out.join("roc.png"),
    )
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let pipeline = Pipeline::from_card_file(&args.card, &args.device.device()?)?;
    let (metrics, scores, truth) = evaluate(&pipeline, &args.data, args.batch_size)?;
    let report = classification_report(&metrics, &pipeline.card.labels, pipeline.card.threshold);
    print!("{report}");
    let out = args
        .out
        .unwrap_or_else(|| args.card.parent().unwrap_or(Path::new(".")).to_path_buf());
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "card": args.card, "data": args.data, "threshold": pipeline.card.threshold, "metrics": metrics,
        }))?,
    )?;
    std::fs::write(out.join("classification_report.txt"), &report)?;
    write_plots(&out, &metrics, &scores, &truth, &pipeline.card)?;
    eprintln!(
        "wrote report.json, classification_report.txt, confusion_matrix.png and roc.png to {}",
        out.display()
    );
    Ok(())
}
