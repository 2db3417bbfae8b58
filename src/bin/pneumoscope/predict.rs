//! `pneumoscope predict`: image files → one JSON object, CSV row or sentence each
//! (`pneumoscope::predict::Pipeline`), optionally with Grad-CAM overlays.

use crate::options::DeviceChoice;
use anyhow::Context;
use image::DynamicImage;
use pneumoscope::decode::FileError;
use pneumoscope::decode::dicom::DicomInfo;
use pneumoscope::ood::{self, Fix, OodCheck};
use pneumoscope::predict::{Pipeline, PredictError, Prediction, decode_with_fixes};
use pneumoscope::{gradcam, preprocess};
use rayon::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// One JSON object per line.
    Json,
    /// A header, then one row per file (for a spreadsheet).
    Csv,
    /// One sentence per file, for a person.
    Text,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Rotation {
    #[value(name = "90")]
    Clockwise,
    #[value(name = "180")]
    Half,
    #[value(name = "270")]
    CounterClockwise,
}

#[derive(clap::Args)]
pub struct Args {
    /// Image files (PNG, JPEG or DICOM). Unreadable files get an `error`; the rest go on.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The model card; the weights file it names is read from the same folder.
    #[arg(long, default_value = "weights/model-card.json")]
    card: PathBuf,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Images per forward pass: files are read and decoded in parallel, then classified together
    /// (cheaper per image on the CPU; results are the same as one at a time). Results are
    /// printed a batch at a time, in the order of the files.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    batch: u16,
    /// Also write each X-ray with its Grad-CAM heatmap blended over it, as `<name>.gradcam.png`
    /// in this folder (created if missing).
    #[arg(long)]
    gradcam_dir: Option<PathBuf>,
    /// Heatmap opacity in the overlays, 0–1.
    #[arg(long, default_value_t = 0.45, value_parser = opacity)]
    opacity: f32,
    /// Give the probability, label and heatmap even for images refused as out of distribution
    /// (not like the chest X-rays the model was trained on). They mean little there.
    #[arg(long)]
    show_anyway: bool,
    /// Invert the grey levels first (for a negative X-ray).
    #[arg(long)]
    invert: bool,
    /// Rotate clockwise by this many degrees first (after --invert).
    #[arg(long, value_enum)]
    rotate: Option<Rotation>,
    /// Also output the embedding the OOD check measures (pooled features, then the first
    /// transition's channel means and standard deviations; JSON only; for analysis).
    #[arg(long, hide = true)]
    features: bool,
}

fn opacity(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a number between 0 and 1")),
    }
}

/// Overlays are written at most this many pixels on their long side.
const OVERLAY_SIDE: u32 = 1024;

fn overlay_base(image: &DynamicImage) -> DynamicImage {
    if image.width().max(image.height()) > OVERLAY_SIDE {
        image.resize(
            OVERLAY_SIDE,
            OVERLAY_SIDE,
            image::imageops::FilterType::Triangle,
        )
    } else {
        image.clone()
    }
}

fn write_overlay(
    dir: &Path,
    file: &Path,
    base: &DynamicImage,
    prediction: &Prediction,
    opacity: f32,
) -> Result<PathBuf, RowError> {
    let stem = file
        .file_stem()
        .unwrap_or(file.as_os_str())
        .to_string_lossy();
    let path = dir.join(format!("{stem}.gradcam.png"));
    match gradcam::overlay(&base.to_rgb8(), &prediction.cam, opacity).save(&path) {
        Ok(()) => Ok(path),
        Err(source) => Err(RowError::Overlay { path, source }),
    }
}

/// Why one file has no result (the rest go on).
#[derive(Debug, thiserror::Error)]
enum RowError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Predict(#[from] PredictError),
    #[error("writing {}: {source}", path.display())]
    Overlay {
        path: PathBuf,
        source: image::ImageError,
    },
}

/// What one file gave: a prediction (and its overlay, if asked for) or the reason it failed.
struct Row {
    file: PathBuf,
    outcome: Result<(Prediction, Option<PathBuf>), RowError>,
}

impl Row {
    /// The result is shown: the input passed the OOD check (or none ran) or the user asked.
    fn shown(prediction: &Prediction, show_anyway: bool) -> bool {
        show_anyway || !prediction.ood.refused()
    }
}

/// A file read and decoded, with the user's fixes applied, and already shrunk to what the
/// analysis (the model's input size) and the overlay need: a batch never holds full-size images.
struct Loaded {
    model_input: DynamicImage,
    overlay_base: Option<DynamicImage>,
    dicom: Option<DicomInfo>,
    decode_ms: f64,
}

fn load(file: &Path, fixes: &[Fix], size: u32, overlay: bool) -> Result<Loaded, FileError> {
    let bytes = std::fs::read(file)?;
    let (decoded, decode_ms) = decode_with_fixes(&bytes, fixes)?;
    let overlay_base = overlay.then(|| overlay_base(&decoded.image));
    Ok(Loaded {
        model_input: preprocess::resized(&decoded.image, size),
        overlay_base,
        dicom: decoded.dicom,
        decode_ms,
    })
}

/// One batch of files: loaded in parallel, classified in one forward pass, rows in file order.
fn analyse_batch(pipeline: &Pipeline, files: &[PathBuf], args: &Args, fixes: &[Fix]) -> Vec<Row> {
    let size = pipeline.card.input_size as u32;
    let loaded: Vec<Result<Loaded, FileError>> = files
        .par_iter()
        .map(|file| load(file, fixes, size, args.gradcam_dir.is_some()))
        .collect();
    let images: Vec<DynamicImage> = loaded
        .iter()
        .flatten()
        .map(|l| l.model_input.clone())
        .collect();
    // A failed batch fails each of its images with the same error.
    let mut predictions: Box<dyn Iterator<Item = Result<Prediction, PredictError>>> =
        match pipeline.analyse_images_blocking(&images) {
            Ok(predictions) => Box::new(predictions.into_iter().map(Ok)),
            Err(e) => Box::new(std::iter::repeat(Err(e))),
        };
    let analysed: Vec<_> = files
        .iter()
        .zip(loaded)
        .map(|(file, loaded)| {
            let analysed = loaded.map_err(RowError::from).and_then(|l| {
                let prediction = predictions.next().expect("one prediction per image")?;
                Ok((l, prediction))
            });
            (file, analysed)
        })
        .collect();
    analysed
        .into_par_iter()
        .map(|(file, analysed)| {
            let outcome = analysed.and_then(|(loaded, mut prediction)| {
                prediction.timings.decode_ms = loaded.decode_ms;
                prediction.dicom = loaded.dicom;
                let overlay = match (&args.gradcam_dir, &loaded.overlay_base) {
                    (Some(dir), Some(base)) if Row::shown(&prediction, args.show_anyway) => {
                        Some(write_overlay(dir, file, base, &prediction, args.opacity)?)
                    }
                    _ => None,
                };
                Ok((prediction, overlay))
            });
            Row {
                file: file.clone(),
                outcome,
            }
        })
        .collect()
}

fn milliseconds(prediction: &Prediction) -> f64 {
    let timings = &prediction.timings;
    timings.decode_ms + timings.inference_ms + timings.gradcam_ms + timings.ood_ms
}

/// The refusal in words, with what the image looks like when a fix would make it pass.
fn refusal(prediction: &Prediction) -> Option<String> {
    let OodCheck::Refused {
        distance,
        threshold,
        fix,
        uniform,
    } = prediction.ood
    else {
        return None;
    };
    let hint = fix.map(|f| format!("; {}", f.hint())).unwrap_or_default();
    let why = if uniform {
        "a uniform image, without any detail".to_string()
    } else {
        format!("OOD distance {distance:.2} > threshold {threshold:.2}")
    };
    Some(format!("{} ({why}){hint}", ood::REFUSAL))
}

fn json_line(row: &Row, show_anyway: bool, features: bool) -> serde_json::Value {
    match &row.outcome {
        Ok((p, overlay)) => {
            let mut line = json!({
                "file": row.file,
                "refused": p.ood.refused(),
                "ood": p.ood,
                "milliseconds": milliseconds(p),
                "timings": p.timings,
                "dicom": p.dicom,
            });
            if let Some(message) = refusal(p) {
                line["message"] = json!(message);
            }
            if Row::shown(p, show_anyway) {
                line["probability"] = json!(p.probability);
                line["label"] = json!(p.label);
                line["band"] = json!(p.band);
            }
            if let Some(path) = overlay {
                line["gradcam"] = json!(path);
            }
            if features {
                line["features"] = json!(p.features);
            }
            line
        }
        Err(error) => json!({ "file": row.file, "error": error.to_string() }),
    }
}

const CSV_HEADER: [&str; 12] = [
    "file",
    "probability",
    "label",
    "band",
    "milliseconds",
    "gradcam",
    "dicom_warnings",
    "ood",
    "ood_distance",
    "ood_threshold",
    "note",
    "error",
];

fn csv_record(row: &Row, show_anyway: bool) -> [String; 12] {
    let mut record: [String; 12] = Default::default();
    record[0] = row.file.display().to_string();
    match &row.outcome {
        Ok((p, overlay)) => {
            if Row::shown(p, show_anyway) {
                record[1] = format!("{:.6}", p.probability);
                record[2] = p.label.clone();
                record[3] = p.band.as_str().into();
            }
            record[4] = format!("{:.1}", milliseconds(p));
            record[5] = overlay
                .as_ref()
                .map(|o| o.display().to_string())
                .unwrap_or_default();
            record[6] = p
                .dicom
                .iter()
                .flat_map(|d| &d.warnings)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            record[7] = p.ood.status().into();
            if let Some((distance, threshold)) = p.ood.distance() {
                record[8] = format!("{distance:.3}");
                record[9] = format!("{threshold:.3}");
            }
            record[10] = refusal(p).unwrap_or_default();
        }
        Err(error) => record[11] = error.to_string(),
    }
    record
}

fn text_line(row: &Row, show_anyway: bool, positive: &str) -> String {
    let file = row.file.display();
    match &row.outcome {
        Ok((p, overlay)) => {
            let mut line = match refusal(p) {
                Some(message) => format!("{file}: REFUSED — {message}"),
                None => format!("{file}:"),
            };
            if Row::shown(p, show_anyway) {
                let shown_anyway = if p.ood.refused() {
                    " shown anyway:"
                } else {
                    ""
                };
                line.push_str(&format!(
                    "{shown_anyway} {} (probability of {} {:.4}, {})",
                    p.label,
                    positive,
                    p.probability,
                    p.band.as_str().replace('_', " ")
                ));
                if let OodCheck::Passed {
                    distance,
                    threshold,
                } = p.ood
                {
                    line.push_str(&format!("; OOD distance {distance:.2} ≤ {threshold:.2}"));
                }
            }
            if let Some(path) = overlay {
                line.push_str(&format!("; heatmap {}", path.display()));
            }
            for warning in p.dicom.iter().flat_map(|d| &d.warnings) {
                line.push_str(&format!("; DICOM: {warning}"));
            }
            line
        }
        Err(error) => format!("{file}: error — {error}"),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let pipeline = Pipeline::from_card_file(&args.card, &args.device.device()?)?;
    if pipeline.ood.is_none() {
        eprintln!("warning: {}", ood::UNAVAILABLE);
    }
    if let Some(dir) = &args.gradcam_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut fixes = Vec::new();
    if args.invert {
        fixes.push(Fix::Invert);
    }
    fixes.extend(args.rotate.map(|r| match r {
        Rotation::Clockwise => Fix::Rotate90,
        Rotation::Half => Fix::Rotate180,
        Rotation::CounterClockwise => Fix::Rotate270,
    }));
    let mut csv =
        matches!(args.format, Format::Csv).then(|| csv::Writer::from_writer(std::io::stdout()));
    if let Some(w) = csv.as_mut() {
        w.write_record(CSV_HEADER)?;
    }
    // Streamed a batch at a time: results are printed as soon as their batch is done, and
    // nothing is kept.
    for files in args.files.chunks(args.batch as usize) {
        for row in analyse_batch(&pipeline, files, &args, &fixes) {
            match (args.format, csv.as_mut()) {
                (_, Some(w)) => {
                    w.write_record(csv_record(&row, args.show_anyway))?;
                    w.flush()?;
                }
                (Format::Text, None) => println!(
                    "{}",
                    text_line(&row, args.show_anyway, &pipeline.card.positive_label)
                ),
                _ => println!("{}", json_line(&row, args.show_anyway, args.features)),
            }
        }
    }
    Ok(())
}
