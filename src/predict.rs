//! `Pipeline::analyse`: image bytes → OOD check, probability, label, band and Grad-CAM. The same
//! code serves the CLI (flex CPU or wgpu) and the browser (WebGPU or flex in wasm).

use crate::card::{Band, ModelCard};
use crate::decode::{self, DecodeError};
use crate::dicom::DicomInfo;
use crate::gradcam::{self, Cam};
use crate::model::{DenseNet, probabilities};
use crate::ood::{self, Fix, OodCheck, OodError, OodModel, OodStats};
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
    /// The OOD distance, plus the inverted / rotated retries of a refused input.
    pub ood_ms: f64,
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
    /// Whether the input looks like the training X-rays. A refused input still carries its
    /// probability, label and map: the interfaces hide them unless the user asks.
    pub ood: OodCheck,
    /// The pooled features the classifier and the OOD check read.
    pub features: Vec<f32>,
}

pub struct Pipeline {
    pub card: ModelCard,
    pub model: DenseNet,
    pub device: Device,
    /// None when the card has no OOD statistics: nothing is refused.
    pub ood: Option<OodModel>,
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
        Self {
            card,
            model: model.valid().to_device(device),
            device: device.clone(),
            ood: None,
        }
    }

    /// Adds the OOD statistics the card names (`bytes`: the file), checked against the card's
    /// sha256 and the model's feature size.
    pub fn with_ood(mut self, bytes: &[u8]) -> Result<Self, OodError> {
        let Some(info) = &self.card.ood else {
            return Ok(self);
        };
        let stats = OodStats::load(bytes, &info.sha256)?;
        let threshold = info.threshold;
        self.set_ood(stats, threshold)?;
        Ok(self)
    }

    /// Uses `stats` with `threshold` (also while fitting, before the card records them).
    pub fn set_ood(&mut self, stats: OodStats, threshold: f32) -> Result<(), OodError> {
        let model = self.model.classifier.weight.shape().dims::<2>()[0];
        if stats.dim() != model {
            return Err(OodError::Dimension {
                stats: stats.dim(),
                model,
            });
        }
        self.ood = Some(OodModel { stats, threshold });
        Ok(())
    }

    /// Decodes and analyses one image.
    pub async fn analyse(&self, bytes: &[u8]) -> Result<Prediction, PredictError> {
        let start = Instant::now();
        let decoded = decode::decode(bytes)?;
        let decode_ms = start.elapsed().as_secs_f64() * 1e3;
        let mut prediction = self.analyse_image(&decoded.image).await?;
        prediction.timings.decode_ms = decode_ms;
        prediction.dicom = decoded.dicom;
        Ok(prediction)
    }

    /// Analyses an already decoded image.
    pub async fn analyse_image(&self, image: &DynamicImage) -> Result<Prediction, PredictError> {
        let mut predictions = self.analyse_images(std::slice::from_ref(image)).await?;
        Ok(predictions.remove(0))
    }

    /// Analyses already decoded images with one batched forward pass (the CLI's `--batch`; a
    /// batch costs less per image than single images on the CPU). Each prediction's
    /// `inference_ms` is its share of the batch's.
    pub async fn analyse_images(
        &self,
        images: &[DynamicImage],
    ) -> Result<Vec<Prediction>, PredictError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let size = self.card.input_size;
        let start = Instant::now();
        let pixels: Vec<Vec<f32>> = images
            .iter()
            .map(|image| preprocess::pixels_chw(image, size as u32, &self.card.normalisation))
            .collect();
        let uniform: Vec<bool> = pixels
            .iter()
            .map(|p| ood::is_uniform(p, &self.card.normalisation))
            .collect();
        let input = preprocess::batch_tensor(pixels.concat(), size, &self.device);
        let features = self.model.forward_features(input);
        let pooled = self.model.pool(features.clone());
        let probs = probabilities(self.model.classifier.forward(pooled.clone()));
        let classes = probs.dims()[1];
        let row = classes + pooled.dims()[1];
        // One read-back for both (each costs a round trip on a GPU).
        let rows: Vec<f32> = read(Tensor::cat(vec![probs, pooled], 1)).await?;
        let inference_ms = start.elapsed().as_secs_f64() * 1e3 / images.len() as f64;

        let mut predictions = Vec::with_capacity(images.len());
        for (i, (image, row)) in images.iter().zip(rows.chunks_exact(row)).enumerate() {
            let (probabilities, embedding) = row.split_at(classes);
            let start = Instant::now();
            let ood = self.check_ood(image, uniform[i], embedding).await?;
            let ood_ms = start.elapsed().as_secs_f64() * 1e3;

            let start = Instant::now();
            let (label_index, probability) = self.decide(probabilities);
            // Binary heads have one logit (the positive class); otherwise explain the chosen class.
            let logit = if self.model.num_outputs() == 1 {
                0
            } else {
                label_index
            };
            let features = features.clone().narrow(0, i, 1);
            let [_, _, h, w] = features.dims();
            let raw = gradcam::raw_maps(features, self.model.classifier.weight.val(), logit);
            let raw: Vec<f32> = read(raw).await?;
            let cam = gradcam::finish(&raw, (w, h), size);
            let gradcam_ms = start.elapsed().as_secs_f64() * 1e3;

            predictions.push(Prediction {
                probability,
                label: self.card.labels[label_index].clone(),
                band: self.card.bands.classify(probability),
                probabilities: probabilities.to_vec(),
                cam,
                timings: Timings {
                    decode_ms: 0.0,
                    inference_ms,
                    gradcam_ms,
                    ood_ms,
                },
                dicom: None,
                ood,
                features: embedding.to_vec(),
            });
        }
        Ok(predictions)
    }

    /// The OOD verdict on `features`; a refused image is retried inverted and rotated (one
    /// batched forward pass, paid only by refused inputs) to say what it looks like.
    async fn check_ood(
        &self,
        image: &DynamicImage,
        uniform: bool,
        features: &[f32],
    ) -> Result<OodCheck, PredictError> {
        let Some(ood) = &self.ood else {
            return Ok(OodCheck::Unavailable);
        };
        let threshold = ood.threshold;
        let (distance, passed) = ood.passes(features);
        if uniform {
            return Ok(OodCheck::Refused {
                distance,
                threshold,
                fix: None,
                uniform,
            });
        }
        if passed {
            return Ok(OodCheck::Passed {
                distance,
                threshold,
            });
        }
        // Fixes commute with the resize to the square input: apply them to the small image.
        let size = self.card.input_size as u32;
        let small = preprocess::resized(image, size);
        let pixels: Vec<f32> = Fix::ALL
            .iter()
            .flat_map(|f| preprocess::pixels_chw(&f.apply(&small), size, &self.card.normalisation))
            .collect();
        let pooled = self
            .model
            .pool(self.model.forward_features(preprocess::batch_tensor(
                pixels,
                size as usize,
                &self.device,
            )));
        let all: Vec<f32> = read(pooled).await?;
        let fix = Fix::ALL
            .iter()
            .zip(all.chunks_exact(features.len()))
            .map(|(f, x)| (*f, ood.passes(x)))
            .filter(|(_, (_, ok))| *ok)
            .min_by(|a, b| a.1.0.total_cmp(&b.1.0))
            .map(|(f, _)| f);
        Ok(OodCheck::Refused {
            distance,
            threshold,
            fix,
            uniform: false,
        })
    }

    /// The predicted class index and the positive-class probability, by the card's threshold.
    fn decide(&self, probabilities: &[f32]) -> (usize, f32) {
        let positive = self.card.positive_index();
        let p = probabilities[positive];
        let index = if probabilities.len() == 2 {
            if p >= self.card.threshold {
                positive
            } else {
                1 - positive
            }
        } else {
            probabilities
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i)
                .unwrap_or(0)
        };
        (index, p)
    }
}

async fn read<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, PredictError> {
    let data = tensor
        .into_data_async()
        .await
        .map_err(|e| PredictError::Readback(format!("{e:?}")))?;
    data.try_to_vec::<f32>()
        .map_err(|e| PredictError::Readback(format!("{e:?}")))
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::*;
    use std::path::{Path, PathBuf};

    /// The weights file a card names, looked up next to the card.
    /// A file the card names (weights, OOD statistics): card files name them relative to the card.
    pub fn beside_card(card_path: &Path, file: impl AsRef<Path>) -> PathBuf {
        card_path.parent().unwrap_or(Path::new(".")).join(file)
    }

    pub fn weights_path(card_path: &Path, card: &ModelCard) -> PathBuf {
        beside_card(card_path, &card.weights.file)
    }

    impl Pipeline {
        /// Loads `weights/model-card.json` (or any card) and the weights file it names.
        pub fn from_card_file(card_path: &Path, device: &Device) -> anyhow::Result<Self> {
            use anyhow::Context;
            let text = std::fs::read_to_string(card_path)
                .with_context(|| format!("reading model card {}", card_path.display()))?;
            let card = ModelCard::from_json(&text)
                .with_context(|| format!("parsing model card {}", card_path.display()))?;
            let path = weights_path(card_path, &card);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("reading weights {}", path.display()))?;
            let ood_path = card.ood.as_ref().map(|o| beside_card(card_path, &o.file));
            let pipeline = Self::load(card, &bytes, device)
                .with_context(|| format!("loading weights {}", path.display()))?;
            match ood_path {
                Some(path) => {
                    let bytes = std::fs::read(&path)
                        .with_context(|| format!("reading OOD statistics {}", path.display()))?;
                    Ok(pipeline
                        .with_ood(&bytes)
                        .with_context(|| format!("loading OOD statistics {}", path.display()))?)
                }
                None => Ok(pipeline),
            }
        }

        /// Blocking form of [`Pipeline::analyse`] for native callers.
        pub fn analyse_blocking(&self, bytes: &[u8]) -> Result<Prediction, PredictError> {
            pollster::block_on(self.analyse(bytes))
        }

        /// Blocking form of [`Pipeline::analyse_images`].
        pub fn analyse_images_blocking(
            &self,
            images: &[DynamicImage],
        ) -> Result<Vec<Prediction>, PredictError> {
            pollster::block_on(self.analyse_images(images))
        }
    }
}
#[cfg(not(target_arch = "wasm32"))]
pub use native::{beside_card, weights_path};
