//! `pneumoscope eval`: a model measured on a labelled folder (`pneumoscope::train::evaluate`).

use crate::options::DeviceChoice;
use indicatif::ProgressBar;
use pneumoscope::train::evaluate::evaluate_card;
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

pub fn run(args: Args) -> anyhow::Result<()> {
    let out = args
        .out
        .unwrap_or_else(|| args.card.parent().unwrap_or(Path::new(".")).into());
    let bar = ProgressBar::no_length();
    let device = args.device.device()?;
    let report = evaluate_card(
        &args.card,
        &args.data,
        &out,
        args.batch_size,
        &device,
        |n| bar.inc(n as u64),
    )?;
    bar.finish_and_clear();
    print!("{report}");
    eprintln!(
        "wrote report.json, classification_report.txt, confusion_matrix.png, roc.png and reliability.png to {}",
        out.display()
    );
    Ok(())
}
