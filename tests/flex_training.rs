//! The training fast path on flex (`model::flex_training`) against burn's generic ops on the same
//! inputs: outputs and gradients within 1e-4 of the reference's largest magnitude (f32 sums in a
//! different order), on odd shapes (1×1 maps, batch 1, channel counts that are not multiples of
//! 8), then a whole DenseNet training step and a short loss curve.

use burn::module::{ModuleVisitor, Param};
use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use pneumoscope::model::{DenseNet, DenseNetConfig, flex_training};
use pneumoscope::train::loss::classification_loss;

const TOLERANCE: f32 = 1e-4;

/// The fast path's switch is process-wide: the tests that flip it take turns.
static SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn device() -> Device {
    Device::flex().autodiff()
}

fn random<const D: usize>(shape: [usize; D]) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device())
}

/// `(max |got − expected|, max |expected|)`.
fn difference_and_scale<const D: usize>(got: Tensor<D>, expected: Tensor<D>) -> (f32, f32) {
    let scale: f32 = expected.clone().abs().max().into_scalar();
    let diff: f32 = (got - expected).abs().max().into_scalar();
    (diff, scale)
}

/// `max |got − expected| ≤ TOLERANCE · max(1, max |expected|)`.
fn assert_close<const D: usize>(what: &str, got: Tensor<D>, expected: Tensor<D>) {
    assert_eq!(got.dims(), expected.dims(), "{what}: shape");
    let (diff, scale) = difference_and_scale(got, expected);
    assert!(
        diff <= TOLERANCE * scale.max(1.0),
        "{what}: max |Δ| {diff} against max |expected| {scale}"
    );
}

/// Asserts our output `got` equals burn's `expected`, then back-propagates the same random
/// upstream gradient through each: (our gradients, burn's), with the input's compared.
fn compare_and_backward(
    what: &str,
    x: &Tensor<4>,
    got: Tensor<4>,
    expected: Tensor<4>,
) -> (burn::tensor::Gradients, burn::tensor::Gradients) {
    assert_close(&format!("{what}: output"), got.clone(), expected.clone());
    let upstream = random(expected.dims());
    let ours = (got * upstream.clone()).sum().backward();
    let theirs = (expected * upstream).sum().backward();
    assert_close(
        &format!("{what}: input gradient"),
        x.grad(&ours).unwrap(),
        x.grad(&theirs).unwrap(),
    );
    (ours, theirs)
}

/// Output, input gradient and weight gradient of our convolution and burn's `Conv2d`.
#[test]
fn convolutions_match_burn_values_and_gradients() {
    // [batch, C_in, C_out, H, W, kernel, stride, padding]: the dense layers' 1×1 and 3×3 on
    // larger and smaller maps, the stem's 7×7 stride 2, and odd ones for the general path.
    let cases = [
        [2, 6, 4, 17, 16, 1, 1, 0],
        [3, 5, 3, 16, 17, 3, 1, 1],
        [2, 7, 5, 6, 5, 1, 1, 0],
        [1, 5, 3, 7, 9, 3, 1, 1],
        [3, 16, 8, 4, 5, 3, 1, 1],
        [2, 2, 4, 1, 1, 3, 1, 1],
        [1, 9, 3, 1, 1, 1, 1, 0],
        [1, 3, 8, 20, 17, 7, 2, 3],
        [3, 2, 4, 9, 9, 3, 2, 1],
        [2, 1, 2, 5, 6, 3, 1, 0],
    ];
    for [batch, c_in, c_out, h, w, kernel, stride, padding] in cases {
        let what = format!("{batch}×{c_in}×{h}×{w} → {c_out}, k{kernel} s{stride} p{padding}");
        let conv = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(
                padding, padding, padding, padding,
            ))
            .with_bias(false)
            .init(&device());
        let x = random([batch, c_in, h, w]).require_grad();
        let expected = conv.forward(x.clone());
        let got = flex_training::conv2d(x.clone(), conv.weight.val(), stride, padding);
        let (ours, theirs) = compare_and_backward(&what, &x, got, expected);
        let weight = conv.weight.val();
        assert_close(
            &format!("{what}: weight gradient"),
            weight.grad(&ours).unwrap(),
            weight.grad(&theirs).unwrap(),
        );
    }
}

/// A batch norm with random γ and β (two copies with the same values and running statistics).
fn batch_norms(channels: usize) -> (BatchNorm, BatchNorm) {
    let gamma = random([channels]).add_scalar(1.0);
    let beta = random([channels]);
    let make = || {
        let mut bn = BatchNormConfig::new(channels).init(&device());
        bn.gamma = Param::from_tensor(gamma.clone());
        bn.beta = Param::from_tensor(beta.clone());
        bn
    };
    (make(), make())
}

/// Output, gradients (input, γ, β) and the updated running statistics of our fused batch norm
/// (with and without its ReLU) and burn's `BatchNorm` (then `relu`).
#[test]
fn batch_norm_matches_burn_values_gradients_and_running_statistics() {
    for [batch, channels, h, w] in [[2, 5, 3, 4], [1, 3, 1, 1], [4, 9, 6, 7], [1, 11, 2, 3]] {
        for relu in [true, false] {
            let what = format!("{batch}×{channels}×{h}×{w}, relu {relu}");
            let (ours_bn, burn_bn) = batch_norms(channels);
            let x = random([batch, channels, h, w]).require_grad();
            let mut expected = burn_bn.forward(x.clone());
            if relu {
                expected = burn::tensor::activation::relu(expected);
            }
            let got = flex_training::batch_norm(&ours_bn, x.clone(), relu);
            let (ours, theirs) = compare_and_backward(&what, &x, got, expected);
            for (name, ours_param, burn_param) in [
                ("γ", ours_bn.gamma.val(), burn_bn.gamma.val()),
                ("β", ours_bn.beta.val(), burn_bn.beta.val()),
            ] {
                assert_close(
                    &format!("{what}: {name} gradient"),
                    ours_param.grad(&ours).unwrap(),
                    burn_param.grad(&theirs).unwrap(),
                );
            }
            assert_close(
                &format!("{what}: running mean"),
                ours_bn.running_mean.value(),
                burn_bn.running_mean.value(),
            );
            assert_close(
                &format!("{what}: running variance"),
                ours_bn.running_var.value(),
                burn_bn.running_var.value(),
            );
        }
    }
}

/// Every float parameter's gradient, in visiting order.
struct CollectGradients<'a> {
    grads: &'a burn::tensor::Gradients,
    found: Vec<Tensor<1>>,
}

impl ModuleVisitor for CollectGradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = param.val().grad(self.grads) {
            self.found.push(grad.flatten(0, D - 1));
        }
    }
}

fn loss_and_gradients(model: &DenseNet, x: Tensor<4>, labels: &[usize]) -> (f32, Vec<Tensor<1>>) {
    let loss = classification_loss(model.forward(x), labels, &[1.0, 1.0], &device());
    let value = loss.clone().into_scalar();
    let grads = loss.backward();
    let mut visitor = CollectGradients {
        grads: &grads,
        found: Vec::new(),
    };
    model.visit(&mut visitor);
    (value, visitor.found)
}

/// `max |a − b| / max |b|` for each parameter's gradient.
fn relative_differences(a: &[Tensor<1>], b: &[Tensor<1>]) -> Vec<f32> {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            let (diff, scale) = difference_and_scale(a.clone(), b.clone());
            diff / scale.max(1e-12)
        })
        .collect()
}

fn median(mut values: Vec<f32>) -> f32 {
    values.sort_by(f32::total_cmp);
    values[values.len() / 2]
}

/// One trial of the test below, with its own seed: (the fast path's median and worst relative
/// difference from the generic path; the largest median and worst among one-ulp input changes).
fn densenet121_trial(seed: u64) -> ((f32, f32), (f32, f32)) {
    device().seed(seed);
    let model = DenseNetConfig::densenet121(1).init(&device());
    let x = random([4, 3, 64, 64]);
    let labels = [1, 0, 0, 1];
    flex_training::set_enabled(true);
    let (fast_loss, fast) = loss_and_gradients(&model, x.clone(), &labels);
    flex_training::set_enabled(false);
    let (generic_loss, generic) = loss_and_gradients(&model, x.clone(), &labels);
    let mut floor = (0.0f32, 0.0f32);
    for factor in [
        1.0 + f32::EPSILON,
        1.0 - f32::EPSILON / 2.0,
        1.0 + 2.0 * f32::EPSILON,
    ] {
        let (_, perturbed) = loss_and_gradients(&model, x.clone().mul_scalar(factor), &labels);
        let differences = relative_differences(&perturbed, &generic);
        floor.0 = floor.0.max(median(differences.clone()));
        floor.1 = floor.1.max(differences.into_iter().fold(0.0, f32::max));
    }
    flex_training::set_enabled(true);
    assert!(
        (fast_loss - generic_loss).abs() < 1e-5,
        "seed {seed}: loss {fast_loss} vs {generic_loss}"
    );
    let ours = relative_differences(&fast, &generic);
    let worst = ours.iter().cloned().fold(0.0, f32::max);
    ((median(ours), worst), floor)
}

/// DenseNet121 itself (64², batch 4): one step's loss and every parameter's gradient with the fast
/// path on and off. 120 ReLUs deep, a gradient is not a continuous function of rounding: where a
/// pre-activation lies within rounding of 0, two computations' ReLU masks can differ, and that
/// element's gradient reaches every earlier layer (at initialisation, with batch norms over a
/// few values, the median parameter moves by 1e-5 to 4e-2 of its largest gradient). So the
/// reference for "float rounding" is measured in the same trial: the generic path against itself
/// on inputs changed by one ulp (three ways; the largest of their medians and worsts). A trial
/// passes when the fast path's median stays within 10 times that median, or 1e-2.
///
/// The fast path rounds differently at every layer, so it sometimes flips a mask that none of
/// the one-ulp changes flip (3 of 40 seeds here; CI once failed on such a draw with a single
/// trial). A wrong gradient (a kernel, a saved state, a gradient sent to the wrong node) moves
/// the median to order 1 on every draw, so the test takes up to three seeded trials and needs
/// one to pass: rounding fails all three about once in 10⁴ runs, a bug always.
#[test]
fn densenet121_step_gradients_match_the_generic_path() {
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let mut seen = Vec::new();
    for seed in [1, 2, 3] {
        let ((ours_median, worst), floor) = densenet121_trial(seed);
        eprintln!(
            "DenseNet121 step, seed {seed}, max |Δg| / max |g| per parameter tensor: ours median \
             {ours_median:.2e}, worst {worst:.2e}; one-ulp input changes: median {:.2e}, worst {:.2e}",
            floor.0, floor.1
        );
        if ours_median <= (10.0 * floor.0).max(1e-2) {
            return;
        }
        seen.push((ours_median, floor.0));
    }
    panic!("no trial within rounding: (fast-path median, one-ulp median) per seed {seen:?}");
}

/// A small DenseNet's loss and every parameter's gradient for one step, then the losses of five
/// Adam steps, with the fast path on and off (burn's generic ops), from the same initial weights.
/// With the one above, the only tests here that switch the process-wide fast path (in turns,
/// switching it back on; the others call the fast path's functions directly).
#[test]
fn a_training_step_and_a_short_loss_curve_match_the_generic_path() {
    let config = DenseNetConfig::new()
        .with_growth_rate(6)
        .with_block_config(vec![2, 3])
        .with_num_init_features(10)
        .with_bn_size(2)
        .with_num_outputs(1);
    let _turn = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let initial = config.init(&device());
    let x = random([3, 3, 40, 36]);
    let labels = [1, 0, 1];

    let run = |fast: bool| {
        flex_training::set_enabled(fast);
        let (loss, gradients) = loss_and_gradients(&initial.clone(), x.clone(), &labels);
        let mut model = initial.clone();
        let mut optim = AdamConfig::new().init();
        let mut curve: Vec<f32> = Vec::new();
        for _ in 0..5 {
            let loss =
                classification_loss(model.forward(x.clone()), &labels, &[1.0, 1.0], &device());
            curve.push(loss.clone().into_scalar());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-3, model, grads);
        }
        (loss, gradients, curve)
    };
    let (fast_loss, fast_gradients, fast_curve) = run(true);
    let (generic_loss, generic_gradients, generic_curve) = run(false);
    flex_training::set_enabled(true);

    assert!(
        (fast_loss - generic_loss).abs() < 1e-5,
        "{fast_loss} vs {generic_loss}"
    );
    assert_eq!(fast_gradients.len(), generic_gradients.len());
    assert!(!fast_gradients.is_empty());
    for (i, (ours, theirs)) in fast_gradients
        .into_iter()
        .zip(generic_gradients)
        .enumerate()
    {
        assert_close(&format!("parameter {i}"), ours, theirs);
    }
    for (step, (ours, theirs)) in fast_curve.iter().zip(&generic_curve).enumerate() {
        assert!(
            (ours - theirs).abs() < 1e-4_f32,
            "step {step}: loss {ours} vs {theirs} ({fast_curve:?} vs {generic_curve:?})"
        );
    }
}
