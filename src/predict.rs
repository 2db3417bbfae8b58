//! `Pipeline::analyse`: image bytes → probability, label, band and Grad-CAM. The same code
//! serves the CLI (flex CPU or wgpu) and the browser (WebGPU or flex in wasm).

use crate::card::{Band, ModelCard};
use crate::decode::{self, DecodeError};
use crate::dicom::DicomInfo;
use crate::gradcam::{self, Cam};
use crate::model::{DenseNet, probabilities};
use crate::preprocess;
use crate::weights::{WeightsError, codec, verify_sha256};
use burn::prelude::*;
use image::DynamicImage;
use serde::Serialize;
use web_time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("reading the result from the device failed: {0}")]
    Readback(String),
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Timings {
    pub decode_ms: f64,
    pub inference_ms: f64,
    pub gradcam_ms: f64,
}

#[derive(Debug, Clone)]
pub struct Prediction {
    /// Probability of the card's positive label (pneumonia).
    pub probability: f32,
    /// All class probabilities, in the card's label order.
    pub probabilities: Vec<f32>,
    pub label: String,
    pub band: Band,
    pub cam: Cam,
    pub timings: Timings,
    /// The header summary and warnings of a DICOM input.
    pub dicom: Option<DicomInfo>,
}

pub struct Pipeline {
    pub card: ModelCard,
    pub model: DenseNet,
    pub device: Device,
}

impl Pipeline {
    /// Checks the weights against the card's sha256, then loads them onto `device`.
    /// Dequantisation happens on the CPU so that only f32 tensors ever reach a GPU.
    pub fn load(card: ModelCard, weights: &[u8], device: &Device) -> Result<Self, WeightsError> {
        if !card.weights.sha256.is_empty() {
            verify_sha256(weights, &card.weights.sha256)?;
        }
        let model = codec::decode(weights, &card.architecture.config(), &Device::flex())?;
        Ok(Self::new(card, model, device))
    }

    pub fn new(card: ModelCard, model: DenseNet, device: &Device) -> Self {
        Self { card, model: model.valid().to_device(device), device: device.clone() }
    }

    /// Decodes and analyses one image.
    pub async fn analyse(&self, bytes: &[u8]) -> Result<Prediction, PredictError> {
        Ok(self.analyse_keeping_image(bytes).await?.1)
    }

    /// As [`Pipeline::analyse`], and hands back the decoded image (for an overlay).
    pub async fn analyse_keeping_image(&self, bytes: &[u8]) -> Result<(DynamicImage, Prediction), PredictError> {
        let start = Instant::now();
        let decoded = decode::decode(bytes)?;
        let decode_ms = start.elapsed().as_secs_f64() * 1e3;
        let mut prediction = self.analyse_image(&decoded.image).await?;
        prediction.timings.decode_ms = decode_ms;
        prediction.dicom = decoded.dicom;
        Ok((decoded.image, prediction))
    }

    /// Analyses an already decoded image.
    pub async fn analyse_image(&self, image: &DynamicImage) -> Result<Prediction, PredictError> {
        let size = self.card.input_size;
        let start = Instant::now();
        let pixels = preprocess::pixels_chw(image, size as u32, &self.card.normalisation);
        let input = preprocess::batch_tensor(pixels, size, &self.device);
        let features = self.model.forward_features(input);
        let probs = probabilities(self.model.head(features.clone()));
        let probabilities: Vec<f32> = read(probs).await?;
        let inference_ms = start.elapsed().as_secs_f64() * 1e3;

        let start = Instant::now();
        let (label_index, probability) = self.decide(&probabilities);
        // Binary heads have one logit (the positive class); otherwise explain the chosen class.
        let logit = if self.model.num_outputs() == 1 { 0 } else { label_index };
        let [_, _, h, w] = features.dims();
        let raw = gradcam::raw_maps(features, self.model.classifier.weight.val(), logit);
        let raw: Vec<f32> = read(raw).await?;
        let cam = gradcam::finish(&raw, (w, h), size);
        let gradcam_ms = start.elapsed().as_secs_f64() * 1e3;

        Ok(Prediction {
            probability,
            label: self.card.labels[label_index].clone(),
            band: self.card.bands.classify(probability),
            probabilities,
            cam,
            timings: Timings { decode_ms: 0.0, inference_ms, gradcam_ms },
            dicom: None,
        })
    }

    /// The predicted class index and the positive-class probability, by the card's threshold.
    fn decide(&self, probabilities: &[f32]) -> (usize, f32) {
        let positive = self.card.positive_index();
        let p = probabilities[positive];
        let index = if probabilities.len() == 2 {
            if p >= self.card.threshold { positive } else { 1 - positive }
        } else {
            probabilities.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0)
        };
        (index, p)
    }
}

async fn read<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, PredictError> {
    let data = tensor.into_data_async().await.map_err(|e| PredictError::Readback(format!("{e:?}")))?;
    data.try_to_vec::<f32>().map_err(|e| PredictError::Readback(format!("{e:?}")))
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::*;
    use std::path::{Path, PathBuf};

    /// The weights file a card names, looked up next to the card.
    pub fn weights_path(card_path: &Path, card: &ModelCard) -> PathBuf {
        card_path.parent().unwrap_or(Path::new(".")).join(&card.weights.file)
    }

    impl Pipeline {
        /// Loads `weights/model-card.json` (or any card) and the weights file it names.
        pub fn from_card_file(card_path: &Path, device: &Device) -> anyhow::Result<Self> {
            use anyhow::Context;
            let text = std::fs::read_to_string(card_path).with_context(|| format!("reading model card {}", card_path.display()))?;
            let card = ModelCard::from_json(&text).with_context(|| format!("parsing model card {}", card_path.display()))?;
            let path = weights_path(card_path, &card);
            let bytes = std::fs::read(&path).with_context(|| format!("reading weights {}", path.display()))?;
            Ok(Self::load(card, &bytes, device).with_context(|| format!("loading weights {}", path.display()))?)
        }

        /// Blocking form of [`Pipeline::analyse`] for native callers.
        pub fn analyse_blocking(&self, bytes: &[u8]) -> Result<Prediction, PredictError> {
            pollster::block_on(self.analyse(bytes))
        }

        /// Blocking form of [`Pipeline::analyse_keeping_image`].
        pub fn analyse_keeping_image_blocking(&self, bytes: &[u8]) -> Result<(DynamicImage, Prediction), PredictError> {
            pollster::block_on(self.analyse_keeping_image(bytes))
        }
    }
}
#[cfg(not(target_arch = "wasm32"))]
pub use native::weights_path;
