//! `pneumoscope import`: a torchvision DenseNet state dict → our f32 checkpoint
//! (`pneumoscope::weights::import`).

use anyhow::Context;
use burn::prelude::Device;
use pneumoscope::model::DenseNetConfig;
use pneumoscope::weights::{codec, import::import_torchvision};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// torchvision DenseNet state dict, e.g. densenet121-a639ec97.pth as downloaded from PyTorch.
    checkpoint: PathBuf,
    /// Where to write the imported f32 weights (safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Outputs of the head: 1 for NORMAL/PNEUMONIA (sigmoid), N for N classes (softmax).
    /// A checkpoint head of another size (ImageNet's 1000) is replaced by a fresh one.
    #[arg(long, default_value_t = 1)]
    outputs: usize,
    /// DenseNet depth of the checkpoint: 121, 169 or 201.
    #[arg(long, default_value_t = 121)]
    depth: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = DenseNetConfig::from_depth(args.depth, args.outputs)?;
    let (model, report) = import_torchvision(&args.checkpoint, &config, &Device::flex())
        .with_context(|| format!("importing {}", args.checkpoint.display()))?;
    let bytes = codec::encode(&model, codec::Precision::F32);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "imported {} tensors from {}{}; wrote {} ({} bytes)",
        report.tensors_loaded,
        args.checkpoint.display(),
        if report.fresh_classifier {
            " (checkpoint head does not fit: fresh classifier initialised)"
        } else {
            ""
        },
        args.out.display(),
        bytes.len()
    );
    Ok(())
}
