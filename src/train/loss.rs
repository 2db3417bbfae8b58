//! The training loss.

use burn::prelude::*;

/// Class-weighted binary cross-entropy on logits `[B, 1]`, or weighted cross-entropy for N classes.
pub fn classification_loss(
    logits: Tensor<2>,
    labels: &[usize],
    class_weights: &[f32],
    device: &Device,
) -> Tensor<1> {
    let weights: Vec<f32> = labels.iter().map(|&l| class_weights[l]).collect();
    let total: f32 = weights.iter().sum();
    let [batch, outputs] = logits.dims();
    let weights = Tensor::<1>::from_data(TensorData::new(weights, [batch]), device);
    let per_sample: Tensor<1> = if outputs == 1 {
        let y: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
        let y = Tensor::<2>::from_data(TensorData::new(y, [batch, 1]), device);
        // max(x, 0) − x·y + log(1 + e^−|x|): stable for any logit.
        let x = logits;
        (x.clone().clamp_min(0.0) - x.clone() * y + x.abs().neg().exp().add_scalar(1.0).log())
            .reshape([batch])
    } else {
        let log_p = burn::tensor::activation::log_softmax(logits, 1);
        let idx: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [batch, 1]), device);
        log_p.gather(1, idx).reshape([batch]).neg()
    };
    (per_sample * weights).sum().div_scalar(total)
}
