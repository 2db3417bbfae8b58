//! `Pipeline::analyse`: image bytes → OOD check, probability, label, band and Grad-CAM. The same
//! code serves the CLI (flex CPU or wgpu) and the browser (WebGPU or flex in wasm).

use crate::card::{Band, ModelCard};
use crate::decode::dicom::DicomInfo;
use crate::decode::{self, DecodeError, Decoded};
use crate::gradcam::{self, Cam};
use crate::model::{DenseNet, probabilities};
use crate::ood::{self, Fix, OodCheck, OodError, OodModel, OodProfile};
use crate::preprocess;
use crate::weights::{WeightsError, codec, verify_sha256};
use burn::prelude::*;
use image::DynamicImage;
use serde::{Deserialize, Serialize};
use web_time::Instant;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PredictError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("reading the result from the device failed: {0}")]
    Readback(String),
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
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
    /// The embedding the OOD check reads: the pooled features the classifier reads, then the
    /// first transition's channel means and standard deviations.
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
        let profile = OodProfile::load(bytes, &info.sha256)?;
        let threshold = info.threshold;
        self.set_ood(profile, threshold)?;
        Ok(self)
    }

    /// Uses `profile` with `threshold` (also while fitting, before the card records them).
    pub fn set_ood(&mut self, profile: OodProfile, threshold: f32) -> Result<(), OodError> {
        let (pooled, embedding) = self.embedding_sizes();
        // v1 statistics read the pooled features alone, v2 the whole embedding.
        if profile.dim() != pooled && profile.dim() != embedding {
            return Err(OodError::Dimension {
                stats: profile.dim(),
                model: embedding,
            });
        }
        self.ood = Some(OodModel { profile, threshold });
        Ok(())
    }

    /// The pooled features' length, and the whole embedding's (pooled + appearance).
    pub fn embedding_sizes(&self) -> (usize, usize) {
        let pooled = self.model.pooled_size();
        (pooled, pooled + self.model.appearance_size())
    }

    /// Decodes and analyses one image.
    pub async fn analyse(&self, bytes: &[u8]) -> Result<Prediction, PredictError> {
        let (decoded, decode_ms) = decode_with_fixes(bytes, &[])?;
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
        let pass = ForwardPass::run(&self.model, input);
        let scores = pass.read().await?;
        let inference_ms = start.elapsed().as_secs_f64() * 1e3 / images.len() as f64;

        let mut predictions = Vec::with_capacity(images.len());
        for (i, (image, (probabilities, embedding))) in images.iter().zip(scores.rows()).enumerate()
        {
            let start = Instant::now();
            let ood = self.check_ood(image, uniform[i], embedding).await?;
            let ood_ms = start.elapsed().as_secs_f64() * 1e3;

            let start = Instant::now();
            let probabilities = self.card.shown_probabilities(probabilities);
            let (label_index, probability) = self.decide(&probabilities);
            // Binary heads have one logit (the positive class); otherwise explain the chosen class.
            let logit = if self.model.num_outputs() == 1 {
                0
            } else {
                label_index
            };
            let features = pass.features.clone().narrow(0, i, 1);
            let [_, _, h, w] = features.dims();
            let pooled = pass.pooled.clone().narrow(0, i, 1);
            let gradient = self.model.logit_gradient(pooled, logit);
            let raw = gradcam::raw_maps(features, gradient);
            let raw: Vec<f32> = read(raw).await?;
            let cam = gradcam::finish(&raw, (w, h), size);
            let gradcam_ms = start.elapsed().as_secs_f64() * 1e3;

            predictions.push(Prediction {
                probability,
                label: self.card.labels[label_index].clone(),
                band: self.card.bands.classify(probability),
                probabilities,
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
        let input = preprocess::batch_tensor(pixels, size as usize, &self.device);
        let fixed = ForwardPass::run(&self.model, input).read().await?;
        let fix = Fix::ALL
            .iter()
            .zip(fixed.rows())
            .map(|(f, (_, embedding))| (*f, ood.passes(embedding)))
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

/// Decodes `bytes` and applies the user's `fixes` (invert, rotate) in order: the first step of
/// every analysis (the app, the CLI and [`Pipeline::analyse`]). Also returns how long it took
/// (ms).
pub fn decode_with_fixes(bytes: &[u8], fixes: &[Fix]) -> Result<(Decoded, f64), DecodeError> {
    let start = Instant::now();
    let decoded = decode::decode(bytes)?;
    let image = fixes
        .iter()
        .fold(decoded.image, |image, fix| fix.apply(&image));
    Ok((
        Decoded { image, ..decoded },
        start.elapsed().as_secs_f64() * 1e3,
    ))
}

/// One batched forward pass: the step every scoring path shares (analysis, evaluation, the OOD
/// fit, validation while training).
pub struct ForwardPass {
    /// The last feature maps and their pooled values, kept for Grad-CAM.
    pub features: Tensor<4>,
    pub pooled: Tensor<2>,
    /// Per image, the class probabilities then the embedding (pooled features, then the first
    /// transition's channel statistics): one tensor, so that a GPU
    /// reads both back in one round trip.
    rows: Tensor<2>,
    classes: usize,
}

impl ForwardPass {
    pub fn run(model: &DenseNet, input: Tensor<4>) -> Self {
        let (features, appearance) = model.forward_features_and_appearance(input);
        let pooled = model.pool(features.clone());
        let probabilities = probabilities(model.logits(pooled.clone()));
        let classes = probabilities.dims()[1];
        let rows = Tensor::cat(vec![probabilities, pooled.clone(), appearance], 1);
        Self {
            features,
            pooled,
            rows,
            classes,
        }
    }

    /// Reads the probabilities and embeddings back from the device.
    pub async fn read(&self) -> Result<BatchScores, PredictError> {
        let width = self.rows.dims()[1];
        let values = read(self.rows.clone()).await?;
        Ok(BatchScores {
            values,
            classes: self.classes,
            width,
        })
    }
}

/// What a [`ForwardPass`] reads back.
pub struct BatchScores {
    values: Vec<f32>,
    classes: usize,
    width: usize,
}

impl BatchScores {
    /// `(class probabilities, embedding)` of each image, in batch order.
    pub fn rows(&self) -> impl Iterator<Item = (&[f32], &[f32])> {
        self.values
            .chunks_exact(self.width)
            .map(|row| row.split_at(self.classes))
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
    use crate::decode::FileError;
    use std::path::{Path, PathBuf};

    /// A file the card names (weights, OOD statistics): card files name them relative to the card.
    pub fn beside_card(card_path: &Path, file: impl AsRef<Path>) -> PathBuf {
        card_path.parent().unwrap_or(Path::new(".")).join(file)
    }

    /// The weights file a card names, looked up next to the card.
    pub fn weights_path(card_path: &Path, card: &ModelCard) -> PathBuf {
        beside_card(card_path, &card.weights.file)
    }

    /// Image files scored in batches ([`Pipeline::score_files`]).
    pub struct ScoredFiles {
        /// The files that could be read, in the order given.
        pub paths: Vec<PathBuf>,
        /// Positive-class probability per readable file, in `paths` order.
        pub scores: Vec<f32>,
        /// Pooled features (the classifier's and the OOD check's input), in `paths` order.
        pub features: Vec<Vec<f32>>,
        /// The files left out, and why.
        pub skipped: Vec<(PathBuf, FileError)>,
    }

    impl Pipeline {
        /// Scores image files as the app does (decode → `pixels_chw`), `batch` per forward
        /// pass, without the OOD check and Grad-CAM: evaluation and the OOD fit. `progress` is
        /// told how many files each batch held.
        pub fn score_files(
            &self,
            files: &[PathBuf],
            batch: usize,
            mut progress: impl FnMut(usize),
        ) -> Result<ScoredFiles, PredictError> {
            let size = self.card.input_size;
            let positive = self.card.positive_index();
            let mut out = ScoredFiles {
                paths: vec![],
                scores: vec![],
                features: vec![],
                skipped: vec![],
            };
            for chunk in files.chunks(batch.max(1)) {
                let mut pixels = Vec::new();
                let mut paths = Vec::new();
                for path in chunk {
                    match decode::read_file(path) {
                        Ok(decoded) => {
                            let norm = &self.card.normalisation;
                            pixels.extend(preprocess::pixels_chw(
                                &decoded.image,
                                size as u32,
                                norm,
                            ));
                            paths.push(path.clone());
                        }
                        Err(why) => out.skipped.push((path.clone(), why)),
                    }
                }
                if !paths.is_empty() {
                    let input = preprocess::batch_tensor(pixels, size, &self.device);
                    let scores = pollster::block_on(ForwardPass::run(&self.model, input).read())?;
                    for (probabilities, embedding) in scores.rows() {
                        out.scores
                            .push(self.card.shown_probabilities(probabilities)[positive]);
                        out.features.push(embedding.to_vec());
                    }
                    out.paths.extend(paths);
                }
                progress(chunk.len());
            }
            Ok(out)
        }

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
pub use native::{ScoredFiles, beside_card, weights_path};
