//! Scores image files exactly as the app does (decode → `pixels_chw`), in batches, keeping the
//! pooled features too (for the OOD statistics).

use crate::card::ModelCard;
use crate::decode::image_from_bytes;
use crate::model::{DenseNet, probabilities};
use crate::preprocess::{batch_tensor, pixels_chw};
use burn::prelude::*;
use std::path::PathBuf;

pub struct Scored {
    pub paths: Vec<PathBuf>,
    /// Positive-class probability per readable file, in `paths` order.
    pub scores: Vec<f32>,
    /// Pooled features (the classifier's input) per readable file, in `paths` order.
    pub features: Vec<Vec<f32>>,
    pub skipped: Vec<(PathBuf, String)>,
}

pub fn score_files(
    model: &DenseNet,
    card: &ModelCard,
    files: &[PathBuf],
    batch: usize,
    device: &Device,
    mut progress: impl FnMut(usize),
) -> Scored {
    let size = card.input_size;
    let positive = card.positive_index();
    let mut out = Scored {
        paths: vec![],
        scores: vec![],
        features: vec![],
        skipped: vec![],
    };
    for chunk in files.chunks(batch.max(1)) {
        let decoded: Vec<_> = chunk
            .iter()
            .map(|p| {
                let img = std::fs::read(p)
                    .map_err(|e| e.to_string())
                    .and_then(|b| image_from_bytes(&b).map_err(|e| e.to_string()));
                (
                    p,
                    img.map(|i| pixels_chw(&i, size as u32, &card.normalisation)),
                )
            })
            .collect();
        let mut pixels = Vec::new();
        let mut paths = Vec::new();
        for (p, r) in decoded {
            match r {
                Ok(px) => {
                    pixels.extend(px);
                    paths.push(p.clone());
                }
                Err(e) => out.skipped.push((p.clone(), e)),
            }
        }
        if !paths.is_empty() {
            let pooled = model.pool(model.forward_features(batch_tensor(pixels, size, device)));
            let probs: Vec<f32> = probabilities(model.classifier.forward(pooled.clone()))
                .into_data()
                .try_to_vec()
                .expect("f32");
            let pooled: Vec<f32> = pooled.into_data().try_to_vec().expect("f32");
            let classes = probs.len() / paths.len();
            out.scores
                .extend(probs.chunks(classes).map(|r| r[positive]));
            out.features.extend(
                pooled
                    .chunks(pooled.len() / paths.len())
                    .map(<[f32]>::to_vec),
            );
            out.paths.extend(paths);
        }
        progress(chunk.len());
    }
    out
}
