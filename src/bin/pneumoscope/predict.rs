use crate::DeviceChoice;
use pneumoscope::predict::Pipeline;
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Image files (PNG, JPEG or DICOM). Unreadable files get an `error` field; the rest go on.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The model card; the weights file it names is read from the same folder.
    #[arg(long, default_value = "weights/model-card.json")]
    card: PathBuf,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let pipeline = Pipeline::from_card_file(&args.card, &args.device.device())?;
    for file in &args.files {
        let line = match std::fs::read(file).map_err(|e| e.to_string()).and_then(|bytes| {
            pipeline.analyse_blocking(&bytes).map_err(|e| e.to_string())
        }) {
            Ok(p) => json!({
                "file": file,
                "probability": p.probability,
                "label": p.label,
                "band": p.band,
                "milliseconds": p.timings.decode_ms + p.timings.inference_ms + p.timings.gradcam_ms,
                "timings": p.timings,
                "dicom": p.dicom,
            }),
            Err(error) => json!({ "file": file, "error": error }),
        };
        println!("{line}");
    }
    Ok(())
}
