//! DenseNet as torchvision defines it (Huang et al. 2017), with a small head for N classes.
//!
//! Field names mirror torchvision's state-dict keys (`features.conv0`, `norm5`, `classifier`, ...)
//! so that importing a torchvision checkpoint needs only the list renames in `weights::import`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

mod cpu_kernels;
#[cfg(not(target_arch = "wasm32"))]
pub mod flex_training;
mod kernels;

/// Architecture hyper-parameters; `densenet121()` is torchvision's default.
#[derive(Config, Debug, PartialEq)]
pub struct DenseNetConfig {
    #[config(default = "32")]
    pub growth_rate: usize,
    #[config(default = "vec![6, 12, 24, 16]")]
    pub block_config: Vec<usize>,
    #[config(default = "64")]
    pub num_init_features: usize,
    #[config(default = "4")]
    pub bn_size: usize,
    /// 1 output (sigmoid) for two classes, N outputs (softmax) otherwise.
    #[config(default = "1")]
    pub num_outputs: usize,
    /// Widths of hidden dense layers (each followed by a ReLU) between the pooled features and
    /// the classifier: none for our own models; imported Keras heads may have some. An
    /// `Option` so that run configs written before it existed still load.
    pub hidden: Option<Vec<usize>>,
}

/// A DenseNet depth other than 121, 169 or 201.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported DenseNet depth {0} (use 121, 169 or 201)")]
pub struct UnsupportedDepth(pub usize);

impl DenseNetConfig {
    /// torchvision's DenseNet of this depth (121, 169 or 201) with `num_outputs` outputs.
    pub fn from_depth(depth: usize, num_outputs: usize) -> Result<Self, UnsupportedDepth> {
        match depth {
            121 => Ok(Self::densenet121(num_outputs)),
            169 => Ok(Self::densenet169(num_outputs)),
            201 => Ok(Self::densenet201(num_outputs)),
            other => Err(UnsupportedDepth(other)),
        }
    }

    pub fn densenet121(num_outputs: usize) -> Self {
        Self::new().with_num_outputs(num_outputs)
    }
    pub fn densenet169(num_outputs: usize) -> Self {
        Self::new()
            .with_block_config(vec![6, 12, 32, 32])
            .with_num_outputs(num_outputs)
    }
    pub fn densenet201(num_outputs: usize) -> Self {
        Self::new()
            .with_block_config(vec![6, 12, 48, 32])
            .with_num_outputs(num_outputs)
    }
    /// A few-kilobyte network with the same structure, for fast tests and golden fixtures.
    pub fn tiny(num_outputs: usize) -> Self {
        Self::new()
            .with_growth_rate(4)
            .with_block_config(vec![2, 2])
            .with_num_init_features(8)
            .with_bn_size(2)
            .with_num_outputs(num_outputs)
    }

    /// The hidden layers' widths (none by default).
    pub fn hidden_widths(&self) -> &[usize] {
        self.hidden.as_deref().unwrap_or_default()
    }

    /// Channels of the last feature map (input of the classifier).
    pub fn num_features(&self) -> usize {
        let mut channels = self.num_init_features;
        for (i, &layers) in self.block_config.iter().enumerate() {
            channels += layers * self.growth_rate;
            if i + 1 < self.block_config.len() {
                channels /= 2;
            }
        }
        channels
    }

    pub fn init(&self, device: &Device) -> DenseNet {
        let mut channels = self.num_init_features;
        let mut blocks = Vec::new();
        let mut transitions = Vec::new();
        for (i, &layers) in self.block_config.iter().enumerate() {
            blocks.push(DenseBlock::new(
                layers,
                channels,
                self.growth_rate,
                self.bn_size,
                device,
            ));
            channels += layers * self.growth_rate;
            if i + 1 < self.block_config.len() {
                transitions.push(Transition::new(channels, channels / 2, device));
                channels /= 2;
            }
        }
        DenseNet {
            features: Features {
                conv0: conv(
                    3,
                    self.num_init_features,
                    7,
                    STEM_STRIDE,
                    STEM_PADDING,
                    device,
                ),
                norm0: batch_norm(self.num_init_features, device),
                pool0: MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(),
                blocks,
                transitions,
                norm5: batch_norm(channels, device),
            },
            hidden: self
                .hidden_widths()
                .iter()
                .scan(channels, |inputs, &width| {
                    let layer = LinearConfig::new(*inputs, width).init(device);
                    *inputs = width;
                    Some(layer)
                })
                .collect(),
            classifier: LinearConfig::new(
                self.hidden_widths().last().copied().unwrap_or(channels),
                self.num_outputs,
            )
            .init(device),
        }
    }
}

/// The stem convolution's geometry (7×7 kernel), named for the CPU kernel that runs it.
const STEM_STRIDE: usize = 2;
const STEM_PADDING: usize = 3;

fn conv(
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([input, output], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .init(device)
}

/// Batch norm as a per-channel affine map when no gradient can be taken (inference): the scale
/// `γ / √(σ² + ε)` and shift `β − μ · scale` are computed on the `[C]` vectors, so the feature map
/// is touched by one multiply and one add instead of burn's default four passes (subtract, divide,
/// multiply, add). Same result up to f32 rounding. Training on flex takes our fused kernel
/// ([`flex_training`]), training elsewhere burn's own `BatchNorm::forward`.
fn norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if x.is_autodiff() {
        return train_norm(bn, x, false);
    }
    let channels = bn.gamma.shape().dims::<1>()[0];
    let var = bn.running_var.value();
    let scale = bn.gamma.val().div(var.add_scalar(bn.epsilon).sqrt());
    let shift = bn
        .beta
        .val()
        .sub(bn.running_mean.value().mul(scale.clone()));
    x.mul(scale.reshape([1, channels, 1, 1]))
        .add(shift.reshape([1, channels, 1, 1]))
}

/// [`norm`] then ReLU (every batch norm of DenseNet but the last).
fn norm_relu(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if x.is_autodiff() {
        return train_norm(bn, x, true);
    }
    relu(norm(bn, x))
}

/// Batch norm (then ReLU when `with_relu`) on an autodiff device.
fn train_norm(bn: &BatchNorm, x: Tensor<4>, with_relu: bool) -> Tensor<4> {
    #[cfg(not(target_arch = "wasm32"))]
    if flex_training::applies(&x) && bn.training.is_enabled() {
        return flex_training::batch_norm(bn, x, with_relu);
    }
    let y = bn.forward(x);
    if with_relu { relu(y) } else { y }
}

/// `conv` (no bias, square kernel, `stride` and `padding` as it was built with) on `x`: our CPU
/// kernels on flex (`inference` names the inference kernel for this geometry, if any), burn's
/// op elsewhere.
fn convolve(
    conv: &Conv2d,
    x: Tensor<4>,
    #[cfg_attr(target_arch = "wasm32", allow(unused_variables))] (stride, padding): (usize, usize),
    inference: Option<fn(Tensor<4>, Tensor<4>) -> Tensor<4>>,
) -> Tensor<4> {
    #[cfg(not(target_arch = "wasm32"))]
    if flex_training::applies(&x) {
        return flex_training::conv2d(x, conv.weight.val(), stride, padding);
    }
    match inference {
        Some(kernel) if cpu_kernels::applies(&x) => kernel(x, conv.weight.val()),
        _ => conv.forward(x),
    }
}

fn batch_norm(features: usize, device: &Device) -> BatchNorm {
    // torchvision's eps and momentum.
    BatchNormConfig::new(features)
        .with_epsilon(1e-5)
        .with_momentum(0.1)
        .init(device)
}

#[derive(Module, Debug)]
pub struct DenseLayer {
    norm1: BatchNorm,
    conv1: Conv2d,
    norm2: BatchNorm,
    conv2: Conv2d,
}

impl DenseLayer {
    fn new(input: usize, growth: usize, bn_size: usize, device: &Device) -> Self {
        Self {
            norm1: batch_norm(input, device),
            conv1: conv(input, bn_size * growth, 1, 1, 0, device),
            norm2: batch_norm(bn_size * growth, device),
            conv2: conv(bn_size * growth, growth, 3, 1, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = convolve(&self.conv1, norm_relu(&self.norm1, x), (1, 0), None);
        let x = norm_relu(&self.norm2, x);
        convolve(&self.conv2, x, (1, 1), Some(cpu_kernels::conv3x3))
    }
}

#[derive(Module, Debug)]
pub struct DenseBlock {
    layers: Vec<DenseLayer>,
}

impl DenseBlock {
    fn new(count: usize, input: usize, growth: usize, bn_size: usize, device: &Device) -> Self {
        let layers = (0..count)
            .map(|i| DenseLayer::new(input + i * growth, growth, bn_size, device))
            .collect();
        Self { layers }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // Each layer sees the concatenation of every earlier output. Concatenating once per
        // layer (instead of keeping a list) keeps one live buffer, as torchvision's memory path.
        let mut features = x;
        for layer in &self.layers {
            let new = layer.forward(features.clone());
            features = Tensor::cat(vec![features, new], 1);
        }
        features
    }
}

#[derive(Module, Debug)]
pub struct Transition {
    norm: BatchNorm,
    conv: Conv2d,
    pool: AvgPool2d,
}

impl Transition {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        Self {
            norm: batch_norm(input, device),
            conv: conv(input, output, 1, 1, 0, device),
            pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        }
    }

    /// Pools before the 1×1 convolution (torchvision convolves first): both are linear, one
    /// across pixels and one across channels, so they commute, and the convolution then runs on
    /// a quarter of the pixels. Same result up to f32 rounding.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = norm_relu(&self.norm, x);
        let x = if cpu_kernels::applies(&x) {
            cpu_kernels::avg_pool_2x2(x)
        } else {
            self.pool.forward(x)
        };
        convolve(&self.conv, x, (1, 0), None)
    }
}

#[derive(Module, Debug)]
pub struct Features {
    conv0: Conv2d,
    norm0: BatchNorm,
    pool0: MaxPool2d,
    blocks: Vec<DenseBlock>,
    transitions: Vec<Transition>,
    norm5: BatchNorm,
}

impl Features {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_keeping_first_transition(x).0
    }

    /// The last feature map, and the first transition's output (None without transitions).
    fn forward_keeping_first_transition(&self, x: Tensor<4>) -> (Tensor<4>, Option<Tensor<4>>) {
        let x = convolve(
            &self.conv0,
            x,
            (STEM_STRIDE, STEM_PADDING),
            Some(|x, weight| cpu_kernels::conv_im2col(x, weight, STEM_STRIDE, STEM_PADDING)),
        );
        let x = norm_relu(&self.norm0, x);
        let mut x = if cpu_kernels::applies(&x) {
            cpu_kernels::max_pool_3x3_s2(x)
        } else {
            self.pool0.forward(x)
        };
        let mut first_transition = None;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if let Some(transition) = self.transitions.get(i) {
                x = transition.forward(x);
                if i == 0 {
                    first_transition = Some(x.clone());
                }
            }
        }
        (norm(&self.norm5, x), first_transition)
    }
}

/// Per image, each channel's mean over space, then its standard deviation: `[N, 2·C]`.
fn channel_mean_and_std(map: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = map.dims();
    let flat = map.reshape([n, c, h * w]);
    let mean = flat.clone().mean_dim(2);
    let variance = (flat - mean.clone()).powi_scalar(2).mean_dim(2);
    Tensor::cat(vec![mean, variance.sqrt()], 1).reshape([n, 2 * c])
}

#[derive(Module, Debug)]
pub struct DenseNet {
    pub features: Features,
    /// Hidden dense layers of the head, each followed by a ReLU (empty but for imported heads).
    pub hidden: Vec<Linear>,
    pub classifier: Linear,
}

impl DenseNet {
    /// The last feature map, `features.norm5`'s output (before the final ReLU): the layer
    /// Grad-CAM explains, as pytorch-grad-cam's `model.features[-1]`.
    pub fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        self.features.forward(images)
    }

    /// Length of the appearance statistics: twice the first transition's output channels
    /// (twice the last map's without transitions).
    pub fn appearance_size(&self) -> usize {
        let channels = match self.features.transitions.first() {
            Some(t) => t.conv.weight.shape().dims::<4>()[0],
            None => self.features.norm5.gamma.shape().dims::<1>()[0],
        };
        2 * channels
    }

    /// [`Self::forward_features`] and, per image, each channel's spatial mean then standard
    /// deviation after the first transition (`[N, 2·C]`; 256 values for DenseNet121): the
    /// low-level appearance the out-of-distribution check reads beside the pooled features,
    /// from the same pass. A model without transitions gives the last map's statistics instead.
    pub fn forward_features_and_appearance(&self, images: Tensor<4>) -> (Tensor<4>, Tensor<2>) {
        let (last, first_transition) = self.features.forward_keeping_first_transition(images);
        let map = first_transition.unwrap_or_else(|| last.clone());
        (last, channel_mean_and_std(map))
    }

    /// The classifier's input: ReLU → global average pool, `[batch, channels]` (also the
    /// feature the OOD check measures).
    pub fn pool(&self, features: Tensor<4>) -> Tensor<2> {
        relu(features).mean_dim(3).mean_dim(2).flatten::<2>(1, 3)
    }

    /// Length of the pooled features (the last map's channels).
    pub fn pooled_size(&self) -> usize {
        self.features.norm5.gamma.shape().dims::<1>()[0]
    }

    /// Logits from the pooled features: the hidden layers (linear → ReLU), then the classifier.
    pub fn logits(&self, pooled: Tensor<2>) -> Tensor<2> {
        let hidden = self
            .hidden
            .iter()
            .fold(pooled, |x, layer| relu(layer.forward(x)));
        self.classifier.forward(hidden)
    }

    /// The gradient of logit `class` with respect to the pooled features, `[batch, channels]`,
    /// in closed form (what Grad-CAM needs, without a backward pass): the classifier's column,
    /// carried back through each hidden layer's ReLU mask and transposed weight.
    pub fn logit_gradient(&self, pooled: Tensor<2>, class: usize) -> Tensor<2> {
        let batch = pooled.dims()[0];
        let mut masks = Vec::with_capacity(self.hidden.len());
        let mut x = pooled;
        for layer in &self.hidden {
            let z = layer.forward(x);
            masks.push(z.clone().greater_elem(0.0).float());
            x = relu(z);
        }
        let column = self.classifier.weight.val().narrow(1, class, 1);
        let mut gradient = column.transpose().repeat_dim(0, batch);
        for (layer, mask) in self.hidden.iter().zip(masks).rev() {
            gradient = (gradient * mask).matmul(layer.weight.val().transpose());
        }
        gradient
    }

    /// Logits from the last feature map: ReLU → global average pool → [`Self::logits`].
    pub fn head(&self, features: Tensor<4>) -> Tensor<2> {
        self.logits(self.pool(features))
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head(self.forward_features(images))
    }

    /// Transfer learning: freezes the backbone except its last `trainable` dense blocks (with
    /// the transitions between them) and the final norm; the classifier always trains.
    pub fn freeze_backbone_except_last(mut self, trainable: usize) -> Self {
        let features = self.features;
        let blocks = features.blocks.len();
        let first_trainable = blocks.saturating_sub(trainable);
        self.features = Features {
            conv0: toggle(false, features.conv0),
            norm0: toggle(false, features.norm0),
            pool0: features.pool0,
            blocks: features
                .blocks
                .into_iter()
                .enumerate()
                .map(|(i, b)| toggle(i >= first_trainable, b))
                .collect(),
            transitions: features
                .transitions
                .into_iter()
                .enumerate()
                .map(|(i, t)| toggle(i + 1 >= first_trainable, t))
                .collect(),
            norm5: toggle(trainable > 0, features.norm5),
        };
        self
    }

    /// Number of classifier outputs (1 = binary with sigmoid).
    pub fn num_outputs(&self) -> usize {
        self.classifier.weight.shape().dims::<2>()[1]
    }
}

fn toggle<M: Module>(train: bool, module: M) -> M {
    if train {
        module.unfreeze()
    } else {
        module.freeze()
    }
}

/// Logits → class probabilities: sigmoid for one output (returns `[1-p, p]`), softmax otherwise.
pub fn probabilities(logits: Tensor<2>) -> Tensor<2> {
    let [_, outputs] = logits.dims();
    if outputs == 1 {
        let p = burn::tensor::activation::sigmoid(logits);
        Tensor::cat(vec![p.clone().neg().add_scalar(1.0), p], 1)
    } else {
        burn::tensor::activation::softmax(logits, 1)
    }
}
