//! `pneumoscope import MODEL.h5|MODEL.keras --out DIR`: an imported Keras model written as a
//! folder the app and the CLI load like our own release (int8 weights + model card).

use super::{Imported, KerasError};
use crate::card::{ModelCard, Normalisation, WeightsInfo};
use crate::tensor_bytes::sha256_hex;
use crate::weights::codec;
use anyhow::Context;
use burn::prelude::Device;
use std::path::{Path, PathBuf};

/// How the notebooks scale pixels before the model, when it has no `Rescaling` layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputScaling {
    /// `keras.applications.densenet.preprocess_input`: `/255`, then ImageNet mean and std.
    KerasTorch,
    /// `x / 127.5 − 1`.
    MinusOneToOne,
    /// `x / 255`.
    Unit,
}

impl InputScaling {
    pub fn normalisation(self) -> Normalisation {
        match self {
            Self::KerasTorch => Normalisation::imagenet(),
            Self::MinusOneToOne => Normalisation {
                mean: [0.5; 3],
                std: [0.5; 3],
            },
            Self::Unit => Normalisation {
                mean: [0.0; 3],
                std: [1.0; 3],
            },
        }
    }
}

pub struct FolderRequest<'a> {
    pub source: &'a Path,
    pub out: &'a Path,
    /// Overrides the model's input size (required when its `Input` shape is not fixed).
    pub input_size: Option<usize>,
    /// The scaling the model expects outside itself (default `KerasTorch`); refused when the
    /// model has its own `Rescaling` layer.
    pub scaling: Option<InputScaling>,
    /// Class names in output order (default NORMAL, PNEUMONIA for one sigmoid output).
    pub labels: Option<Vec<String>>,
    /// The positive class (default PNEUMONIA when present, else the last label).
    pub positive: Option<String>,
}

pub struct Written {
    pub card: ModelCard,
    pub files: Vec<PathBuf>,
    pub head: String,
}

pub fn import_to_folder(request: FolderRequest) -> anyhow::Result<Written> {
    let bytes = std::fs::read(request.source)
        .with_context(|| format!("reading {}", request.source.display()))?;
    let source_sha256 = sha256_hex(&bytes);
    let imported = super::import(bytes, &Device::flex())
        .map_err(|e: KerasError| anyhow::anyhow!("{e}"))
        .with_context(|| format!("importing {}", request.source.display()))?;
    let Imported {
        model,
        config,
        input_size,
        normalisation,
        head,
        keras_version,
    } = imported;

    let input_size = request.input_size.or(input_size).context(
        "the model's input shape is not a fixed square: pass --input-size N (the side it was trained at)",
    )?;
    let (normalisation, scaling_text) = match (normalisation, request.scaling) {
        (Some(_), Some(_)) => anyhow::bail!(
            "the model scales its input itself (a Rescaling layer): --normalisation would scale it twice"
        ),
        (Some(n), None) => (
            n,
            "the model's own Rescaling layer (raw 0-255 pixels in)".to_string(),
        ),
        (None, scaling) => {
            let scaling = scaling.unwrap_or(InputScaling::KerasTorch);
            (
                scaling.normalisation(),
                format!("{scaling:?} outside the model"),
            )
        }
    };
    let classes = config.num_outputs.max(2);
    let labels = match request.labels {
        Some(labels) => labels,
        None if classes == 2 => vec!["NORMAL".into(), "PNEUMONIA".into()],
        None => anyhow::bail!(
            "the model has {classes} outputs: name them in output order with --labels A,B,…"
        ),
    };
    anyhow::ensure!(
        labels.len() == classes,
        "{} labels for a model with {classes} classes",
        labels.len()
    );
    let positive = request.positive.unwrap_or_else(|| {
        labels
            .iter()
            .find(|l| l.eq_ignore_ascii_case("PNEUMONIA"))
            .unwrap_or(labels.last().expect("at least two labels"))
            .clone()
    });
    anyhow::ensure!(
        labels.contains(&positive),
        "--positive {positive} is not one of the labels {labels:?}"
    );

    let stem = request
        .source
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("keras-model")
        .to_string();
    let int8 = codec::encode(&model, codec::Precision::Int8);
    let mut card = ModelCard::new(&stem, &config, labels, input_size);
    card.version = "imported".into();
    card.normalisation = normalisation;
    card.positive_label = positive;
    card.threshold = 0.5;
    card.training.data = "not recorded (imported model)".into();
    card.training.recipe = format!(
        "imported from Keras{}: {} (sha256 {source_sha256}); head {head}; input scaling: {scaling_text}",
        if keras_version.is_empty() {
            String::new()
        } else {
            format!(" {keras_version}")
        },
        request
            .source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    card.weights = WeightsInfo::int8(format!("{stem}.int8.safetensors"), &int8);

    std::fs::create_dir_all(request.out)
        .with_context(|| format!("creating {}", request.out.display()))?;
    let weights_path = request.out.join(&card.weights.file);
    std::fs::write(&weights_path, &int8)
        .with_context(|| format!("writing {}", weights_path.display()))?;
    let card_path = request.out.join("model-card.json");
    std::fs::write(&card_path, card.to_json())
        .with_context(|| format!("writing {}", card_path.display()))?;
    Ok(Written {
        card,
        files: vec![weights_path, card_path],
        head,
    })
}
