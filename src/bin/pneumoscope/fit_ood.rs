//! `pneumoscope fit-ood`: fits the out-of-distribution statistics for a model card's weights
//! (no retraining) and records them in the card (`pneumoscope::train::fit_ood`).

use crate::options::{DeviceChoice, OodArgs};
use indicatif::ProgressBar;
use pneumoscope::train::fit_ood::{FitSettings, refit_card, save_features};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The model card to fit for; the statistics file is written next to it and the card is updated.
    #[arg(long, default_value = "weights/model-card.json")]
    card: PathBuf,
    /// Dataset root with `train/{CLASS}/…` (the data these weights were trained on; default:
    /// the run's, from config.json beside the card).
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    settings: OodArgs,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    /// Also write the training and validation features here (safetensors), for analysis.
    #[arg(long, hide = true)]
    save_features: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let bar = ProgressBar::no_length();
    let settings = FitSettings::from(&args.settings);
    let device = args.device.device()?;
    let fitted = refit_card(&args.card, args.data.as_deref(), &settings, &device, |n| {
        bar.inc(n as u64)
    })?;
    bar.finish_and_clear();
    if let Some(path) = &args.save_features {
        save_features(path, &fitted)?;
    }
    eprintln!("fit-ood: updated {}", args.card.display());
    Ok(())
}
