//! Keras DenseNet layers → our module paths. Keras names the stem `conv1_conv` / `conv1_bn`
//! (Keras 2: `conv1/conv`), dense layer `J` of stage `K` `convK_blockJ_{0_bn, 1_conv, 1_bn,
//! 2_conv}`, the transitions `poolK_{bn, conv}` and the final norm `bn`; kernels are
//! channels-last (`[kh, kw, in, out]`, ours `[out, in, kh, kw]`); `Dense` kernels are
//! `[in, out]` like burn's `Linear`.

use super::KerasError;
use super::archive::{Archive, Variable};
use super::graph::{self, Layer};
use crate::card::Normalisation;
use crate::model::{DenseNet, DenseNetConfig};
use crate::weights::codec::{f32_tensor, model_from_tensors};
use burn::prelude::Device;
use burn::store::burn_pack::Tensor as PackTensor;
use std::collections::{HashMap, HashSet};

/// Our batch norms' epsilon (torchvision's); Keras' DenseNet uses 1.001e-5.
const OUR_EPSILON: f64 = 1e-5;

/// What the import produced.
pub struct Imported {
    pub model: DenseNet,
    pub config: DenseNetConfig,
    /// The input side the model was built for (its `Input` shape), when square and fixed.
    pub input_size: Option<usize>,
    /// The input scaling of a `Rescaling` layer inside the model, as a card normalisation.
    pub normalisation: Option<Normalisation>,
    /// The head as read, e.g. "GlobalAveragePooling2D → Dense(16, relu) → Dense(1, sigmoid)".
    pub head: String,
    pub keras_version: String,
}

/// Layers that compute nothing at inference (augmentation, dropout) or only shape the input.
const INERT: [&str; 9] = [
    "InputLayer",
    "Dropout",
    "SpatialDropout2D",
    "GaussianNoise",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomContrast",
    "RandomTranslation",
];
/// The layers `keras.applications.densenet` builds its backbone from.
const BACKBONE: [&str; 7] = [
    "ZeroPadding2D",
    "Conv2D",
    "BatchNormalization",
    "Activation",
    "MaxPooling2D",
    "AveragePooling2D",
    "Concatenate",
];

struct Builder<'a> {
    archive: &'a Archive,
    by_name: HashMap<String, &'a Layer>,
    used: HashSet<String>,
    tensors: Vec<PackTensor>,
}

fn unsupported(layer: &Layer, why: impl Into<String>) -> KerasError {
    KerasError::Unsupported {
        layer: layer.name.clone(),
        class: layer.class.clone(),
        why: why.into(),
    }
}

impl<'a> Builder<'a> {
    /// The layer called `name` (`conv1_conv`; Keras 2's `conv1/conv` matches too).
    fn layer(&self, name: &str) -> Option<&'a Layer> {
        self.by_name.get(name).copied()
    }

    fn variables(&mut self, layer: &Layer) -> Result<HashMap<String, Variable>, KerasError> {
        self.used.insert(layer.name.clone());
        self.archive.variables(layer)
    }

    fn require(&self, name: &str) -> Result<&'a Layer, KerasError> {
        self.layer(name).ok_or_else(|| {
            KerasError::NotDenseNet(format!(
                "no layer '{name}' (keras.applications.densenet names its layers so)"
            ))
        })
    }

    /// A convolution without bias → `{ours}.weight`, kernel transposed to `[out, in, kh, kw]`.
    fn conv(&mut self, name: &str, ours: &str) -> Result<Vec<usize>, KerasError> {
        let layer = self.require(name)?;
        if layer.class != "Conv2D" {
            return Err(unsupported(layer, "expected a Conv2D here"));
        }
        let mut vars = self.variables(layer)?;
        if vars.contains_key("bias") {
            return Err(unsupported(layer, "DenseNet convolutions have no bias"));
        }
        let (shape, values) = vars.remove("kernel").expect("listed variable");
        let [kh, kw, inputs, outputs] = shape[..] else {
            return Err(unsupported(layer, format!("kernel of shape {shape:?}")));
        };
        let mut transposed = vec![0.0; values.len()];
        for (i, v) in values.iter().enumerate() {
            let (rest, o) = (i / outputs, i % outputs);
            let (rest, c) = (rest / inputs, rest % inputs);
            let (y, x) = (rest / kw, rest % kw);
            transposed[((o * inputs + c) * kh + y) * kw + x] = *v;
        }
        let ours_shape = vec![outputs, inputs, kh, kw];
        self.tensors.push(f32_tensor(
            format!("{ours}.weight"),
            ours_shape.clone(),
            transposed,
        ));
        Ok(ours_shape)
    }

    /// A batch norm → `{ours}.{gamma, beta, running_mean, running_var}`. Keras' epsilon is
    /// folded into the variance (`var + ε_keras − ε_ours`), exact wherever f32 can tell.
    fn batch_norm(&mut self, name: &str, ours: &str) -> Result<(), KerasError> {
        let layer = self.require(name)?;
        if layer.class != "BatchNormalization" {
            return Err(unsupported(layer, "expected a BatchNormalization here"));
        }
        let epsilon = layer.config["epsilon"].as_f64().unwrap_or(1e-3);
        let mut vars = self.variables(layer)?;
        let (shape, mean) = vars.remove("moving_mean").expect("listed variable");
        let (_, variance) = vars.remove("moving_variance").expect("listed variable");
        let channels = mean.len();
        let gamma = vars.remove("gamma").map_or(vec![1.0; channels], |v| v.1);
        let beta = vars.remove("beta").map_or(vec![0.0; channels], |v| v.1);
        let variance = variance
            .iter()
            .map(|v| (*v as f64 + epsilon - OUR_EPSILON) as f32)
            .collect();
        for (field, values) in [
            ("gamma", gamma),
            ("beta", beta),
            ("running_mean", mean),
            ("running_var", variance),
        ] {
            self.tensors
                .push(f32_tensor(format!("{ours}.{field}"), shape.clone(), values));
        }
        Ok(())
    }

    /// A dense layer → `{ours}.weight` (`[in, out]`, as Keras) and `.bias`; its output width.
    fn dense(&mut self, layer: &Layer, ours: &str) -> Result<usize, KerasError> {
        let mut vars = self.variables(layer)?;
        let (shape, kernel) = vars.remove("kernel").expect("listed variable");
        let outputs = shape[1];
        let bias = vars.remove("bias").map_or(vec![0.0; outputs], |v| v.1);
        self.tensors
            .push(f32_tensor(format!("{ours}.weight"), shape, kernel));
        self.tensors
            .push(f32_tensor(format!("{ours}.bias"), vec![outputs], bias));
        Ok(outputs)
    }
}

/// A `Rescaling(scale, offset)` on 0–255 pixels as our `(x/255 − mean)/std`.
fn rescaling(layer: &Layer) -> Result<Normalisation, KerasError> {
    let channel_values = |key: &str, default: f64| -> Result<Vec<f64>, KerasError> {
        let value = &layer.config[key];
        let values: Vec<f64> = match value {
            serde_json::Value::Null => vec![default],
            serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_f64()).collect(),
            other => other.as_f64().into_iter().collect(),
        };
        match values.len() {
            1 => Ok(vec![values[0]; 3]),
            3 => Ok(values),
            _ => Err(unsupported(
                layer,
                format!("{key} {value} is not a number or 3 numbers"),
            )),
        }
    };
    let (scale, offset) = (
        channel_values("scale", 1.0)?,
        channel_values("offset", 0.0)?,
    );
    if scale.iter().any(|s| *s <= 0.0) {
        return Err(unsupported(layer, "a scale that is not positive"));
    }
    let std: Vec<f64> = scale.iter().map(|s| 1.0 / (255.0 * s)).collect();
    let mean = offset
        .iter()
        .zip(&std)
        .map(|(o, s)| -o * s)
        .collect::<Vec<_>>();
    let as_f32 = |v: Vec<f64>| [v[0] as f32, v[1] as f32, v[2] as f32];
    Ok(Normalisation {
        mean: as_f32(mean),
        std: as_f32(std),
    })
}

/// The side of a square, fixed `Input` shape (`[null, H, W, 3]`).
fn input_size(layers: &[Layer]) -> Result<Option<usize>, KerasError> {
    let Some(input) = layers.iter().find(|l| l.class == "InputLayer") else {
        return Ok(None);
    };
    let shape = input.config["batch_shape"]
        .as_array()
        .or_else(|| input.config["batch_input_shape"].as_array());
    let Some(shape) = shape else {
        return Ok(None);
    };
    let dims: Vec<Option<u64>> = shape.iter().map(|d| d.as_u64()).collect();
    match dims[..] {
        [_, h, w, Some(3)] => Ok(h.filter(|h| Some(*h) == w).map(|h| h as usize)),
        [_, _, _, Some(channels)] => Err(unsupported(
            input,
            format!("{channels} input channels; the DenseNet stem reads 3 (RGB)"),
        )),
        _ => Err(unsupported(
            input,
            format!("input shape {shape:?}; expected [batch, height, width, 3] (channels last)"),
        )),
    }
}

pub fn map(archive: &Archive, device: &Device) -> Result<Imported, KerasError> {
    let layers = graph::layers(&archive.config)?;
    let mut builder = Builder {
        archive,
        by_name: layers
            .iter()
            .map(|l| (l.name.replace('/', "_"), l))
            .collect(),
        used: HashSet::new(),
        tensors: Vec::new(),
    };

    let final_norm = layers.iter().position(|l| l.name.replace('/', "_") == "bn");
    let missing: Vec<&str> = [
        ("conv1_conv", builder.layer("conv1_conv").is_some()),
        ("bn", final_norm.is_some()),
    ]
    .iter()
    .filter(|(_, found)| !found)
    .map(|(name, _)| *name)
    .collect();
    if !missing.is_empty() {
        let weighted: Vec<String> = layers
            .iter()
            .filter(|l| !l.variable_names().is_empty())
            .map(|l| format!("{} ({})", l.name, l.class))
            .collect();
        let more = weighted.len().saturating_sub(6);
        return Err(KerasError::NotDenseNet(format!(
            "no layer {} (keras.applications' DenseNets have the stem 'conv1_conv' and the final \
             norm 'bn'); its layers with weights: {}{}",
            missing.join(" or "),
            weighted[..weighted.len().min(6)].join(", "),
            if more > 0 {
                format!(" … and {more} more")
            } else {
                String::new()
            }
        )));
    }
    let final_norm = final_norm.expect("checked above");
    // Up to the final norm, every layer must be DenseNet's or the input's, before any weight is
    // read: a custom layer (or a ResNet's `Add`) is named as what does not fit.
    let mut normalisation = None;
    for layer in &layers[..final_norm] {
        match layer.class.as_str() {
            "Rescaling" => normalisation = Some(rescaling(layer)?),
            c if INERT.contains(&c) || BACKBONE.contains(&c) => {}
            _ => return Err(unsupported(layer, "not part of a DenseNet or its input")),
        }
    }
    let stem = builder.conv("conv1_conv", "features.conv0")?;
    builder.batch_norm("conv1_bn", "features.norm0")?;
    let mut block_config = Vec::new();
    let (mut growth, mut bottleneck) = (0, 0);
    while builder
        .layer(&format!("conv{}_block1_0_bn", block_config.len() + 2))
        .is_some()
    {
        let (stage, b) = (block_config.len() + 2, block_config.len());
        let mut j = 1;
        while builder
            .layer(&format!("conv{stage}_block{j}_0_bn"))
            .is_some()
        {
            let (keras, ours) = (
                format!("conv{stage}_block{j}"),
                format!("features.blocks.{b}.layers.{}", j - 1),
            );
            builder.batch_norm(&format!("{keras}_0_bn"), &format!("{ours}.norm1"))?;
            bottleneck = builder.conv(&format!("{keras}_1_conv"), &format!("{ours}.conv1"))?[0];
            builder.batch_norm(&format!("{keras}_1_bn"), &format!("{ours}.norm2"))?;
            growth = builder.conv(&format!("{keras}_2_conv"), &format!("{ours}.conv2"))?[0];
            j += 1;
        }
        block_config.push(j - 1);
        if builder.layer(&format!("pool{stage}_conv")).is_some() {
            builder.batch_norm(
                &format!("pool{stage}_bn"),
                &format!("features.transitions.{b}.norm"),
            )?;
            let [outputs, inputs, ..] = builder.conv(
                &format!("pool{stage}_conv"),
                &format!("features.transitions.{b}.conv"),
            )?[..] else {
                unreachable!("a 4-d kernel")
            };
            if outputs != inputs / 2 {
                return Err(KerasError::NotDenseNet(format!(
                    "transition pool{stage}_conv maps {inputs} to {outputs} channels; \
                     only DenseNet's halving (reduction 0.5) is supported"
                )));
            }
        }
    }
    if block_config.is_empty() {
        return Err(KerasError::NotDenseNet(
            "no dense block 'conv2_block1_*' after the stem".into(),
        ));
    }
    builder.batch_norm("bn", "features.norm5")?;

    let (hidden, outputs, head) = read_head(&mut builder, &layers[final_norm + 1..])?;

    for layer in &layers {
        if !layer.variable_names().is_empty() && !builder.used.contains(&layer.name) {
            return Err(unsupported(
                layer,
                "its weights have no place in a DenseNet",
            ));
        }
    }
    let config = DenseNetConfig::new()
        .with_growth_rate(growth)
        .with_block_config(block_config)
        .with_num_init_features(stem[0])
        .with_bn_size(bottleneck / growth.max(1))
        .with_num_outputs(outputs)
        .with_hidden((!hidden.is_empty()).then_some(hidden));
    let model =
        model_from_tensors(builder.tensors, &config, device).map_err(KerasError::Mismatch)?;
    Ok(Imported {
        model,
        config,
        input_size: input_size(&layers)?,
        normalisation,
        head,
        keras_version: archive.keras_version.clone(),
    })
}

/// The head after the final norm: (hidden widths, outputs, description).
fn read_head(
    builder: &mut Builder,
    layers: &[Layer],
) -> Result<(Vec<usize>, usize, String), KerasError> {
    let mut pooled = false;
    // (layer, activation) of each Dense, in order.
    let mut dense: Vec<(&Layer, String)> = Vec::new();
    let mut parts = Vec::new();
    for layer in layers {
        let activation = layer.config["activation"]
            .as_str()
            .unwrap_or("linear")
            .to_string();
        match layer.class.as_str() {
            "Activation" if dense.is_empty() && activation == "relu" => {} // the final ReLU
            "GlobalAveragePooling2D" if !pooled => {
                pooled = true;
                parts.push("GlobalAveragePooling2D".to_string());
            }
            "Flatten" if pooled => {}
            "Dense" if pooled => dense.push((layer, activation)),
            "Activation" if !dense.is_empty() => {
                let last = dense.last_mut().expect("not empty");
                if last.1 != "linear" {
                    return Err(unsupported(
                        layer,
                        "a second activation after a Dense layer",
                    ));
                }
                last.1 = activation;
            }
            c if INERT.contains(&c) => {}
            _ => {
                let why = if pooled {
                    "not supported in the head (global average pooling, Dense, Dropout)"
                } else {
                    "the head must start with global average pooling"
                };
                return Err(unsupported(layer, why));
            }
        }
    }
    let Some(((last, last_activation), hidden_layers)) = dense.split_last() else {
        return Err(KerasError::NotDenseNet(
            "no Dense layer after the pooled features (include_top=False without a head?)".into(),
        ));
    };
    let mut hidden = Vec::new();
    for (i, (layer, activation)) in hidden_layers.iter().enumerate() {
        if activation != "relu" {
            return Err(unsupported(
                layer,
                format!("hidden Dense layers must use relu, not {activation}"),
            ));
        }
        let width = builder.dense(layer, &format!("hidden.{i}"))?;
        parts.push(format!("Dense({width}, relu)"));
        hidden.push(width);
    }
    let outputs = builder.dense(last, "classifier")?;
    match (last_activation.as_str(), outputs) {
        ("sigmoid", 1) => {}
        ("softmax", n) if n >= 2 => {}
        (activation, n) => {
            return Err(unsupported(
                last,
                format!(
                    "the last layer must be Dense(1, sigmoid) or Dense(N ≥ 2, softmax), not \
                     Dense({n}, {activation})"
                ),
            ));
        }
    }
    parts.push(format!("Dense({outputs}, {last_activation})"));
    Ok((hidden, outputs, parts.join(" → ")))
}
