//! The training loss: (class-weighted) cross-entropy against soft targets, so that label
//! smoothing and mixup (`super::targets`) share one loss with plain labels.

use burn::prelude::*;

/// Class-weighted binary cross-entropy on logits `[B, 1]`, or weighted cross-entropy for N classes.
pub fn classification_loss(
    logits: Tensor<2>,
    labels: &[usize],
    class_weights: &[f32],
    device: &Device,
) -> Tensor<1> {
    let targets = super::targets::Targets::hard(labels, class_weights.len());
    soft_target_loss(logits, &targets, class_weights, device)
}

/// Cross-entropy of `logits` `[B, outputs]` against `targets` (each row a distribution over the
/// classes; one output = the positive class's sigmoid), each row weighted by its targets'
/// expected class weight, normalised by the weights' sum.
pub fn soft_target_loss(
    logits: Tensor<2>,
    targets: &super::targets::Targets,
    class_weights: &[f32],
    device: &Device,
) -> Tensor<1> {
    let weights = targets.sample_weights(class_weights);
    let total: f32 = weights.iter().sum();
    let [batch, outputs] = logits.dims();
    let weights = Tensor::<1>::from_data(TensorData::new(weights, [batch]), device);
    let per_sample: Tensor<1> = if outputs == 1 {
        let y = Tensor::<2>::from_data(
            TensorData::new(targets.positive_share(), [batch, 1]),
            device,
        );
        // max(x, 0) − x·y + log(1 + e^−|x|): stable for any logit, any y in [0, 1].
        let x = logits;
        (x.clone().clamp_min(0.0) - x.clone() * y + x.abs().neg().exp().add_scalar(1.0).log())
            .reshape([batch])
    } else {
        let log_p = burn::tensor::activation::log_softmax(logits, 1);
        let y = Tensor::<2>::from_data(
            TensorData::new(targets.rows().to_vec(), [batch, outputs]),
            device,
        );
        (log_p * y).sum_dim(1).reshape([batch]).neg()
    };
    (per_sample * weights).sum().div_scalar(total)
}
