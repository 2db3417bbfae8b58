//! Native training: data folders, the patient-grouped split, augmentation, and the
//! checkpointed, resumable training loop.

pub mod augment;
pub mod backend;
pub mod data;
pub mod evaluate;
pub mod history;
pub mod run;
pub mod split;

use crate::card::Normalisation;
use crate::model::{DenseNet, probabilities};
use crate::preprocess::{batch_tensor, gray_to_chw};
use burn::prelude::*;

/// Positive-class probabilities of grayscale planes (side `size`), in batches, no augmentation.
pub fn score_planes(
    model: &DenseNet,
    planes: &[Vec<u8>],
    size: usize,
    norm: &Normalisation,
    batch: usize,
    device: &Device,
    positive: usize,
    mut progress: impl FnMut(usize),
) -> Vec<f32> {
    let mut scores = Vec::with_capacity(planes.len());
    for chunk in planes.chunks(batch.max(1)) {
        let pixels: Vec<f32> = chunk
            .iter()
            .flat_map(|p| {
                gray_to_chw(
                    &p.iter().map(|v| *v as f32 / 255.0).collect::<Vec<_>>(),
                    norm,
                )
            })
            .collect();
        let probs = probabilities(model.forward(batch_tensor(pixels, size, device)));
        let probs: Vec<f32> = probs.into_data().try_to_vec().expect("f32 probabilities");
        let classes = probs.len() / chunk.len();
        scores.extend(probs.chunks(classes).map(|row| row[positive]));
        progress(chunk.len());
    }
    scores
}
