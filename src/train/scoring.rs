//! Scores decoded validation planes with a model as the training validation does (no
//! augmentation, the run's input size): the one scoring pass of validation and calibration.

use super::data::PlaneSet;
use crate::card::Normalisation;
use crate::model::DenseNet;
use crate::predict::ForwardPass;
use crate::preprocess::{batch_tensor, gray_to_chw};
use burn::prelude::*;

/// The raw positive-class probability of every plane in `set`, `batch` per forward pass.
pub fn positive_scores(
    model: &DenseNet,
    set: &PlaneSet,
    norm: &Normalisation,
    batch: usize,
    positive: usize,
    device: &Device,
) -> anyhow::Result<Vec<f32>> {
    let mut scores = Vec::with_capacity(set.planes.len());
    for chunk in set.planes.chunks(batch.max(1)) {
        let pixels: Vec<f32> = chunk
            .iter()
            .flat_map(|plane| {
                let gray: Vec<f32> = plane.iter().map(|v| *v as f32 / 255.0).collect();
                gray_to_chw(&gray, norm)
            })
            .collect();
        let input = batch_tensor(pixels, set.size, device);
        let batch = pollster::block_on(ForwardPass::run(model, input).read())?;
        scores.extend(
            batch
                .rows()
                .map(|(probabilities, _)| probabilities[positive]),
        );
    }
    Ok(scores)
}
