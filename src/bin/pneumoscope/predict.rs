use crate::DeviceChoice;
use anyhow::Context;
use pneumoscope::gradcam;
use pneumoscope::predict::{Pipeline, Prediction};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// One JSON object per line.
    Json,
    /// A header, then one row per file (for a spreadsheet).
    Csv,
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
    /// Also write each X-ray with its Grad-CAM heatmap blended over it, as `<name>.gradcam.png`
    /// in this folder (created if missing).
    #[arg(long)]
    gradcam_dir: Option<PathBuf>,
    /// Heatmap opacity in the overlays, 0–1.
    #[arg(long, default_value_t = 0.45, value_parser = opacity)]
    opacity: f32,
}

fn opacity(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a number between 0 and 1")),
    }
}

/// Overlays are written at most this many pixels on their long side.
const OVERLAY_SIDE: u32 = 1024;

fn write_overlay(dir: &Path, file: &Path, image: &image::DynamicImage, prediction: &Prediction, opacity: f32) -> anyhow::Result<PathBuf> {
    let base = if image.width().max(image.height()) > OVERLAY_SIDE { image.resize(OVERLAY_SIDE, OVERLAY_SIDE, image::imageops::FilterType::Triangle) } else { image.clone() };
    let stem = file.file_stem().unwrap_or(file.as_os_str()).to_string_lossy();
    let path = dir.join(format!("{stem}.gradcam.png"));
    gradcam::overlay(&base.to_rgb8(), &prediction.cam, opacity)
        .save(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// What one file gave: a prediction (and its overlay, if asked for) or the reason it failed.
struct Row {
    file: PathBuf,
    outcome: Result<(Prediction, Option<PathBuf>), String>,
}

fn analyse(pipeline: &Pipeline, file: &Path, gradcam_dir: Option<&Path>, opacity: f32) -> Row {
    let outcome = (|| {
        let bytes = std::fs::read(file).map_err(|e| format!("cannot read the file: {e}"))?;
        let (image, prediction) = pipeline.analyse_keeping_image_blocking(&bytes).map_err(|e| e.to_string())?;
        let overlay = match gradcam_dir {
            Some(dir) => Some(write_overlay(dir, file, &image, &prediction, opacity).map_err(|e| format!("{e:#}"))?),
            None => None,
        };
        Ok((prediction, overlay))
    })();
    Row { file: file.to_path_buf(), outcome }
}

fn milliseconds(p: &Prediction) -> f64 {
    p.timings.decode_ms + p.timings.inference_ms + p.timings.gradcam_ms
}

fn json_line(row: &Row) -> serde_json::Value {
    match &row.outcome {
        Ok((p, overlay)) => {
            let mut line = json!({
                "file": row.file,
                "probability": p.probability,
                "label": p.label,
                "band": p.band,
                "milliseconds": milliseconds(p),
                "timings": p.timings,
                "dicom": p.dicom,
            });
            if let Some(path) = overlay {
                line["gradcam"] = json!(path);
            }
            line
        }
        Err(error) => json!({ "file": row.file, "error": error }),
    }
}

const CSV_HEADER: [&str; 8] = ["file", "probability", "label", "band", "milliseconds", "gradcam", "dicom_warnings", "error"];

fn csv_record(row: &Row) -> [String; 8] {
    let file = row.file.display().to_string();
    match &row.outcome {
        Ok((p, overlay)) => [
            file,
            format!("{:.6}", p.probability),
            p.label.clone(),
            serde_json::to_value(p.band).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
            format!("{:.1}", milliseconds(p)),
            overlay.as_ref().map(|o| o.display().to_string()).unwrap_or_default(),
            p.dicom.iter().flat_map(|d| &d.warnings).map(ToString::to_string).collect::<Vec<_>>().join("; "),
            String::new(),
        ],
        Err(error) => {
            let mut record: [String; 8] = Default::default();
            record[0] = file;
            record[7] = error.clone();
            record
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let pipeline = Pipeline::from_card_file(&args.card, &args.device.device())?;
    if let Some(dir) = &args.gradcam_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut csv = matches!(args.format, Format::Csv).then(|| csv::Writer::from_writer(std::io::stdout()));
    if let Some(w) = csv.as_mut() {
        w.write_record(CSV_HEADER)?;
    }
    // Streamed: each result is printed as soon as it exists, and nothing is kept.
    for file in &args.files {
        let row = analyse(&pipeline, file, args.gradcam_dir.as_deref(), args.opacity);
        match csv.as_mut() {
            Some(w) => {
                w.write_record(csv_record(&row))?;
                w.flush()?;
            }
            None => println!("{}", json_line(&row)),
        }
    }
    Ok(())
}
