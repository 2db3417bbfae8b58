//! The training fast path on burn's flex CPU backend: DenseNet's convolutions and its batch norms
//! (with the ReLU that follows them) as our own forward and backward kernels in the autodiff graph.
//!
//! burn's generic path runs a convolution's weight gradient as a whole convolution with batch and
//! channels swapped, its input gradient as a transposed convolution, and a training batch norm as
//! about ten forward and thirteen backward full-tensor passes with transposed copies. Here each
//! is a matrix product per image (`batch_ops`) or two reading passes and one writing pass.
//!
//! burn's backend extension ([`FlexTraining`]) routes the two operations to the flex
//! implementation below, and on an autodiff device to ours in `backward`, which records them in
//! the graph with their own backward steps. Only for f32 tensors on flex with autodiff
//! ([`applies`]); inference keeps `cpu_kernels`, other backends (wgpu) keep burn's ops.
//! Checked against burn's generic ops, values and gradients, in `tests/flex_training.rs`.

mod backward;
mod batch_ops;

use super::kernels::Geometry;
use batch_ops::Planes;
use burn::backend::flex::FlexTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use std::sync::atomic::{AtomicBool, Ordering};

/// Operations with our own kernels, forward and backward, on flex.
#[backend_extension(Flex, Autodiff)]
pub trait FlexTraining: Backend {
    /// `x` `[B, C_in, H, W]` convolved with `weight` `[C_out, C_in, k, k]` at `stride`, with
    /// `padding` zeros on every side, no bias.
    fn conv2d_square(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self>;

    /// Batch norm with the batch's statistics (then ReLU when `relu`): the output, the batch mean
    /// and the biased variance (both `[C]`, for the running statistics; not differentiated).
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the fast path off (burn's generic ops everywhere) or back on, for the whole process:
/// what the parity tests and the before/after benchmark compare.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether the fast path computes this training input: f32 on flex with autodiff.
pub fn applies(x: &Tensor<4>) -> bool {
    ENABLED.load(Ordering::Relaxed)
        && x.is_autodiff()
        && x.device().inner() == Device::flex()
        && x.dtype() == DType::F32
}

/// [`FlexTraining::conv2d_square`] on high-level tensors.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, stride: usize, padding: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FlexTraining>::conv2d_square(
        x.into_dispatch(),
        weight.into_dispatch(),
        stride,
        padding,
    ))
}

/// `bn` in training on `x` (then ReLU when `relu`), updating its running statistics as burn's
/// `BatchNorm::forward` does (momentum on the batch mean and biased variance).
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    let device = x.device();
    let (output, mean, variance) = <Dispatch as FlexTraining>::batch_norm_train(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon,
        relu,
    );
    let update = |running: Tensor<1>, batch: Tensor<1>| {
        running
            .to_device(&device)
            .mul_scalar(1.0 - bn.momentum)
            .add(batch.detach().mul_scalar(bn.momentum))
            .detach()
    };
    bn.running_mean.update(update(
        bn.running_mean.value_sync(),
        Tensor::from_dispatch(mean),
    ));
    bn.running_var.update(update(
        bn.running_var.value_sync(),
        Tensor::from_dispatch(variance),
    ));
    Tensor::from_dispatch(output)
}

/// A flex tensor's f32 values in row-major order (a copy only if its layout is not contiguous).
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(values) => values.into(),
        None => t
            .to_contiguous()
            .as_slice::<f32>()
            .expect("f32 tensor")
            .to_vec()
            .into(),
    }
}

fn tensor(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let shape = burn::backend::TensorMetadata::shape(t);
    assert_eq!(
        shape.num_dims(),
        4,
        "flex_training: expected a 4-d tensor, got {shape:?}"
    );
    [shape[0], shape[1], shape[2], shape[3]]
}

/// The geometry of `x` convolved with `weight` (asserting they fit together).
fn conv_geometry(
    x: &FlexTensor,
    weight: &FlexTensor,
    stride: usize,
    padding: usize,
) -> (usize, Geometry, usize) {
    let [batch, c_in, h, w] = dims4(x);
    let [c_out, weight_in, kh, kw] = dims4(weight);
    assert!(
        weight_in == c_in
            && kh == kw
            && stride > 0
            && h + 2 * padding >= kh
            && w + 2 * padding >= kw,
        "conv2d_square: weight {:?} for input {:?}",
        [c_out, weight_in, kh, kw],
        [batch, c_in, h, w]
    );
    let geometry = Geometry {
        c_in,
        h,
        w,
        kernel: kh,
        stride,
        padding,
    };
    (batch, geometry, c_out)
}

fn planes(x: &FlexTensor) -> Planes {
    let [batch, channels, h, w] = dims4(x);
    Planes {
        batch,
        channels,
        pixels: h * w,
    }
}

impl FlexTraining for Flex {
    fn conv2d_square(
        x: FlexTensor,
        weight: FlexTensor,
        stride: usize,
        padding: usize,
    ) -> FlexTensor {
        let (batch, g, c_out) = conv_geometry(&x, &weight, stride, padding);
        let out = batch_ops::conv_forward(&values(&x), batch, &g, &values(&weight), c_out);
        tensor(out, &[batch, c_out, g.out_h(), g.out_w()])
    }

    fn batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (output, stats) = batch_norm_forward(&x, &gamma, &beta, epsilon, relu);
        let channels = stats.mean.len();
        (
            output,
            tensor(stats.mean, &[channels]),
            tensor(stats.variance, &[channels]),
        )
    }
}

/// [`batch_ops::batch_norm_forward`] on flex tensors: the output, and the statistics (the
/// backward step keeps the mean and `1/√(var + ε)`).
fn batch_norm_forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
    relu: bool,
) -> (FlexTensor, batch_ops::BatchStats) {
    let (y, stats) = batch_ops::batch_norm_forward(
        &values(x),
        planes(x),
        &values(gamma),
        &values(beta),
        epsilon,
        relu,
    );
    (tensor(y, &dims4(x)), stats)
}
