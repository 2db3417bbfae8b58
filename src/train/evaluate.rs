//! Measuring a model on a labelled folder (`pneumoscope eval`, and `export` for f32 and int8):
//! the metrics at the card's threshold, the classification report and the plots.

use super::data::scan;
use super::plots;
use crate::calibration::{expected_calibration_error, reliability};
use crate::card::{ModelCard, TestMetrics};
use crate::metrics::{roc_curve, summarise};
use crate::predict::Pipeline;
use crate::subgroups::{FamilySpecificity, normals_by_family};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// A model measured on a labelled folder.
pub struct Evaluation {
    /// At the card's threshold.
    pub metrics: TestMetrics,
    /// Positive-class probability per readable image.
    pub scores: Vec<f32>,
    /// Whether each image is of the positive class, in `scores` order.
    pub truth: Vec<bool>,
    /// The negatives' specificity by file-name family, at the card's threshold.
    pub normals_by_family: BTreeMap<String, FamilySpecificity>,
    /// Expected calibration error of the scores (10 bins, class-balanced).
    pub calibration_error: f64,
}

/// Scores every image of `data` (`DIR/{CLASS}/*`), `batch` per forward pass; unreadable files are
/// warned about and left out. `progress` is told how many files each batch held.
pub fn evaluate(
    pipeline: &Pipeline,
    data: &Path,
    batch: usize,
    progress: impl FnMut(usize),
) -> anyhow::Result<Evaluation> {
    let folder = scan(data)?;
    anyhow::ensure!(
        folder.classes == pipeline.card.labels,
        "the folder's classes {:?} differ from the model's labels {:?}",
        folder.classes,
        pipeline.card.labels
    );
    let files: Vec<PathBuf> = folder.samples.iter().map(|s| s.path.clone()).collect();
    let scored = pipeline.score_files(&files, batch, progress)?;
    for (path, why) in &scored.skipped {
        eprintln!("warning: skipped {}: {why}", path.display());
    }
    anyhow::ensure!(
        !scored.scores.is_empty(),
        "no readable images in {}",
        data.display()
    );
    let positive = pipeline.card.positive_index();
    let label_of: HashMap<&PathBuf, usize> =
        folder.samples.iter().map(|s| (&s.path, s.label)).collect();
    let truth: Vec<bool> = scored
        .paths
        .iter()
        .map(|p| label_of[p] == positive)
        .collect();
    let threshold = pipeline.card.threshold;
    Ok(Evaluation {
        metrics: summarise(&scored.scores, &truth, threshold),
        normals_by_family: normals_by_family(&scored.paths, &scored.scores, &truth, threshold),
        calibration_error: expected_calibration_error(&scored.scores, &truth),
        scores: scored.scores,
        truth,
    })
}

/// The scikit-learn style report of a binary model (`classification_report.txt`).
pub fn classification_report(metrics: &TestMetrics, labels: &[String], threshold: f32) -> String {
    let (tn, fp) = (metrics.confusion[0][0], metrics.confusion[0][1]);
    let (fn_, tp) = (metrics.confusion[1][0], metrics.confusion[1][1]);
    let negative_precision = if tn + fn_ > 0 {
        tn as f64 / (tn + fn_) as f64
    } else {
        0.0
    };
    let specificity = metrics.specificity;
    let negative_f1 = if negative_precision + specificity > 0.0 {
        2.0 * negative_precision * specificity / (negative_precision + specificity)
    } else {
        0.0
    };
    let (negative, positive) = (&labels[0], &labels[1]);
    let mut out = format!("threshold {threshold:.4}\n\n");
    let row = |name: &str, precision: f64, recall: f64, f1: f64, support: usize| {
        format!("{name:>12} {precision:>10.4} {recall:>10.4} {f1:>10.4} {support:>8}\n")
    };
    let _ = writeln!(
        out,
        "{:>12} {:>10} {:>10} {:>10} {:>8}",
        "", "precision", "recall", "f1", "support"
    );
    out += &row(
        negative,
        negative_precision,
        specificity,
        negative_f1,
        tn + fp,
    );
    out += &row(
        positive,
        metrics.precision,
        metrics.sensitivity,
        metrics.f1,
        fn_ + tp,
    );
    let _ = writeln!(
        out,
        "\naccuracy {:.4}   ROC AUC {:.4}   images {}\n",
        metrics.accuracy, metrics.roc_auc, metrics.images
    );
    out += "confusion (rows: true, columns: predicted)\n";
    let _ = writeln!(out, "{:>12} {negative:>10} {positive:>10}", "");
    let _ = writeln!(out, "{negative:>12} {tn:>10} {fp:>10}");
    let _ = writeln!(out, "{positive:>12} {fn_:>10} {tp:>10}");
    out
}

/// `confusion_matrix.png`, `roc.png` and `reliability.png` of a measured model, into `out`.
pub fn write_plots(out: &Path, evaluation: &Evaluation, card: &ModelCard) -> anyhow::Result<()> {
    let metrics = &evaluation.metrics;
    plots::confusion_matrix(
        &metrics.confusion,
        &card.labels,
        &out.join("confusion_matrix.png"),
    )?;
    let curve: Vec<(f64, f64)> = roc_curve(&evaluation.scores, &evaluation.truth)
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
    )?;
    plots::reliability(
        &reliability(&evaluation.scores, &evaluation.truth, 10),
        evaluation.calibration_error,
        &out.join("reliability.png"),
    )
}

/// `pneumoscope eval`: measures the weights `card_path` names on the labelled folder `data` and
/// writes report.json, classification_report.txt, confusion_matrix.png, roc.png and reliability.png into `out`.
/// Returns the classification report.
pub fn evaluate_card(
    card_path: &Path,
    data: &Path,
    out: &Path,
    batch: usize,
    device: &burn::prelude::Device,
    progress: impl FnMut(usize),
) -> anyhow::Result<String> {
    let pipeline = Pipeline::from_card_file(card_path, device)?;
    let evaluation = evaluate(&pipeline, data, batch, progress)?;
    let card = &pipeline.card;
    let report = classification_report(&evaluation.metrics, &card.labels, card.threshold);
    std::fs::create_dir_all(out)?;
    let json = serde_json::json!({
        "card": card_path, "data": data, "threshold": card.threshold, "metrics": evaluation.metrics,
        "normals_by_family": evaluation.normals_by_family,
        "calibration_error": evaluation.calibration_error,
    });
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    std::fs::write(out.join("classification_report.txt"), &report)?;
    write_plots(out, &evaluation, card)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::summarise;

    #[test]
    fn report_lays_out_both_classes() {
        let scores = [0.9, 0.8, 0.3, 0.6, 0.2];
        let truth = [true, true, true, false, false];
        let metrics = summarise(&scores, &truth, 0.5);
        let labels = ["NORMAL".to_string(), "PNEUMONIA".to_string()];
        let report = classification_report(&metrics, &labels, 0.5);
        let expected = "threshold 0.5000

              precision     recall         f1  support
      NORMAL     0.5000     0.5000     0.5000        2
   PNEUMONIA     0.6667     0.6667     0.6667        3

accuracy 0.6000   ROC AUC 0.8333   images 5

confusion (rows: true, columns: predicted)
                 NORMAL  PNEUMONIA
      NORMAL          1          1
   PNEUMONIA          1          2
";
        assert_eq!(report, expected);
    }
}
