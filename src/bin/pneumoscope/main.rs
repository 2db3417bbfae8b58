//! `pneumoscope`: the native command line. Each subcommand is a thin shell over the library.

mod eval;
mod export;
mod fit_ood;
mod import;
mod options;
mod predict;
mod tracking;
mod train;

use clap::{Parser, Subcommand};

/// mimalloc, keeping freed pages: see `pneumoscope::allocator`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "pneumoscope",
    version,
    about = "Private chest X-ray pneumonia screening (DenseNet121) — native CLI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify image files; prints one JSON object per file.
    Predict(predict::Args),
    /// Train a DenseNet on a labelled image folder (checkpointed, resumable).
    Train(train::Args),
    /// Measure a model on a labelled folder: accuracy, sensitivity, specificity, F1, ROC AUC.
    Eval(eval::Args),
    /// Quantize trained weights to the shipped int8 format with a measured model card.
    Export(export::Args),
    /// Fit the out-of-distribution statistics for existing weights and record them in the card.
    FitOod(fit_ood::Args),
    /// Import a torchvision DenseNet state dict (.pth) into our f32 checkpoint format.
    Import(import::Args),
}

fn main() -> anyhow::Result<()> {
    pneumoscope::allocator::keep_freed_pages();
    match Cli::parse().command {
        Command::Predict(args) => predict::run(args),
        Command::Import(args) => import::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export::run(args),
        Command::FitOod(args) => fit_ood::run(args),
    }
}
