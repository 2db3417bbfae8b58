//! `pneumoscope import`: a torchvision DenseNet state dict → our f32 checkpoint
//! (`pneumoscope::weights::import`), or a Keras DenseNet classifier (`.h5` / `.keras`) → a
//! folder with int8 weights and a model card (`pneumoscope::keras`).

use anyhow::Context;
use burn::prelude::Device;
use pneumoscope::keras::{FolderRequest, InputScaling, import_to_folder};
use pneumoscope::model::DenseNetConfig;
use pneumoscope::weights::{codec, import::import_torchvision};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, clap::ValueEnum)]
enum Normalisation {
    /// keras.applications.densenet.preprocess_input: /255, then ImageNet mean and std.
    KerasTorch,
    /// x / 127.5 - 1.
    #[value(name = "minus1-1")]
    MinusOneToOne,
    /// x / 255.
    Unit,
}

#[derive(clap::Args)]
pub struct Args {
    /// torchvision DenseNet state dict (.pth, e.g. densenet121-a639ec97.pth), or a Keras
    /// DenseNet classifier saved by model.save() (.h5 or .keras).
    checkpoint: PathBuf,
    /// Where to write: the f32 weights file (.safetensors) for a torchvision checkpoint; a
    /// folder (int8 weights + model-card.json, usable as the app's weights/) for a Keras model.
    #[arg(long)]
    out: PathBuf,
    /// torchvision: outputs of the head, 1 for NORMAL/PNEUMONIA (sigmoid), N for N classes
    /// (softmax); a checkpoint head of another size (ImageNet's 1000) is replaced by a fresh one.
    #[arg(long, default_value_t = 1)]
    outputs: usize,
    /// torchvision: DenseNet depth of the checkpoint (121, 169 or 201).
    #[arg(long, default_value_t = 121)]
    depth: usize,
    /// Keras: input side in pixels (default: the model's Input shape).
    #[arg(long)]
    input_size: Option<usize>,
    /// Keras: how the notebook scaled pixels before the model (default keras-torch; not allowed
    /// when the model has its own Rescaling layer, which is then used).
    #[arg(long, value_enum)]
    normalisation: Option<Normalisation>,
    /// Keras: class names in output order (default NORMAL,PNEUMONIA for one sigmoid output).
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<String>>,
    /// Keras: the positive class (default PNEUMONIA when present, else the last label).
    #[arg(long)]
    positive: Option<String>,
}

fn is_keras(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("h5" | "hdf5" | "keras")
    )
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if is_keras(&args.checkpoint) {
        return run_keras(args);
    }
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

fn run_keras(args: Args) -> anyhow::Result<()> {
    let written = import_to_folder(FolderRequest {
        source: &args.checkpoint,
        out: &args.out,
        input_size: args.input_size,
        scaling: args.normalisation.map(|n| match n {
            Normalisation::KerasTorch => InputScaling::KerasTorch,
            Normalisation::MinusOneToOne => InputScaling::MinusOneToOne,
            Normalisation::Unit => InputScaling::Unit,
        }),
        labels: args.labels,
        positive: args.positive,
    })?;
    let arch = &written.card.architecture;
    eprintln!(
        "imported a Keras DenseNet (blocks {:?}, growth {}) with head {}; input {}×{}, labels {:?}; wrote {}",
        arch.block_config,
        arch.growth_rate,
        written.head,
        written.card.input_size,
        written.card.input_size,
        written.card.labels,
        written
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "no OOD statistics: every input is analysed; fit them on your training X-rays with \
         `pneumoscope fit-ood --card {}/model-card.json --data DIR`",
        args.out.display()
    );
    Ok(())
}
