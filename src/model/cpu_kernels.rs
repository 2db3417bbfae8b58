//! Inference kernels for the CPU where burn's flex backend is slow on DenseNet's shapes. Only for
//! tensors on the flex device without autodiff ([`applies`]): training on flex has its own, with
//! gradients ([`super::flex_training`]), the WebGPU path burn's shaders. The convolutions' cores
//! are the slice kernels of [`super::kernels`]. Each is checked against burn's own op in the
//! tests below; the figures are in docs/benchmarks.md ("What changed the figures").
//!
//! - [`conv3x3`]: the dense layers' 3×3 convolution (stride 1, padding 1, no bias) as one matrix
//!   product and nine shifted sums ("kn2row", Vasudevan et al., 2017). burn runs it as im2col
//!   tiles of 512 pixels, each a thin product (32 output channels × 1,152) that repacks the
//!   weights every tile; here the nine kernel taps become the rows of one well-shaped product,
//!   `[9·C_out, C_in] × [C_in, H·W]`, taken straight on the NCHW input (no im2col copy), and each
//!   output plane is the sum of nine planes of that product, shifted by the tap's offset; the
//!   zero padding is the shifted range's bounds. Same result up to f32 rounding.
//! - [`conv_im2col`]: the stem's 7×7, stride 2 convolution of the RGB input. burn's path for few
//!   input channels walks the kernel directly; here im2col tiles of about 4,096 output pixels,
//!   each one matrix product `[C_out, 3·7·7] × [3·7·7, pixels]` written straight into the output.
//! - [`max_pool_3x3_s2`] and [`avg_pool_2x2`]: the stem's and the transitions' pooling. burn's
//!   max pooling computes argmax indices even when nobody asks and both walk each window with
//!   bounds checks per element; here, row-wise passes that vectorise. Same result exactly.

use super::kernels::{self, Geometry, for_each_chunk};
use burn::prelude::*;

/// Whether these kernels may replace burn's ops for this input.
pub fn applies(x: &Tensor<4>) -> bool {
    !x.is_autodiff() && x.device() == Device::flex()
}

/// `x` `[B, C_in, H, W]` convolved with `weight` `[C_out, C_in, 3, 3]`, stride 1, padding 1.
pub fn conv3x3(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    let [batch, c_in, h, w] = x.dims();
    let [c_out, weight_in, kh, kw] = weight.dims();
    assert!(
        weight_in == c_in && kh == 3 && kw == 3,
        "conv3x3: weight {:?} for input {:?}",
        weight.dims(),
        x.dims()
    );
    let weight = weight.into_data();
    let taps = kernels::conv3x3_taps(
        weight.as_slice::<f32>().expect("f32 weights"),
        c_out,
        c_in,
        false,
    );
    let parallelism = kernels::gemm_parallelism(batch);
    map_blocks(x, batch, [batch, c_out, h, w], |x, out| {
        kernels::conv3x3_image(&taps, x, out, (c_in, c_out, h, w), parallelism)
    })
}

/// `x` `[B, C_in, H, W]` convolved with `weight` `[C_out, C_in, kh, kw]` at `stride`, with
/// `padding` zeros on every side, no bias.
pub fn conv_im2col(x: Tensor<4>, weight: Tensor<4>, stride: usize, padding: usize) -> Tensor<4> {
    let [batch, c_in, h, w] = x.dims();
    let [c_out, weight_in, kh, kw] = weight.dims();
    assert!(
        weight_in == c_in && kh == kw && h + 2 * padding >= kh && w + 2 * padding >= kw,
        "conv_im2col: weight {:?} for input {:?}",
        weight.dims(),
        x.dims()
    );
    let geometry = Geometry {
        c_in,
        h,
        w,
        kernel: kh,
        stride,
        padding,
    };
    let weight = weight.into_data();
    let weight = weight.as_slice::<f32>().expect("f32 weights");
    let parallelism = kernels::gemm_parallelism(batch);
    let shape = [batch, c_out, geometry.out_h(), geometry.out_w()];
    map_blocks(x, batch, shape, |x, out| {
        kernels::conv_im2col_image(weight, x, out, &geometry, c_out, parallelism)
    })
}

/// The 3×3, stride 2, padding 1 max pooling of DenseNet's stem.
pub fn max_pool_3x3_s2(x: Tensor<4>) -> Tensor<4> {
    let [batch, channels, h, w] = x.dims();
    let out_w = (w - 1) / 2 + 1;
    map_blocks(
        x,
        batch * channels,
        [batch, channels, (h - 1) / 2 + 1, out_w],
        |input, out| {
            for (oy, out_row) in out.chunks_exact_mut(out_w).enumerate() {
                out_row.fill(f32::NEG_INFINITY);
                // Input rows 2·oy − 1 ..= 2·oy + 1, those inside the image (padding never wins).
                for y in (2 * oy).saturating_sub(1)..(2 * oy + 2).min(h) {
                    let row = &input[y * w..(y + 1) * w];
                    for (ox, o) in out_row.iter_mut().enumerate() {
                        let x = 2 * ox;
                        let mut m = row[x];
                        if x > 0 {
                            m = m.max(row[x - 1]);
                        }
                        if x + 1 < w {
                            m = m.max(row[x + 1]);
                        }
                        *o = o.max(m);
                    }
                }
            }
        },
    )
}

/// The 2×2, stride 2 average pooling of DenseNet's transitions (an odd last row or column is
/// dropped, as in PyTorch).
pub fn avg_pool_2x2(x: Tensor<4>) -> Tensor<4> {
    let [batch, channels, h, w] = x.dims();
    let out_w = w / 2;
    map_blocks(
        x,
        batch * channels,
        [batch, channels, h / 2, out_w],
        |input, out| {
            for (oy, out_row) in out.chunks_exact_mut(out_w).enumerate() {
                let (top, bottom) = (&input[2 * oy * w..][..w], &input[(2 * oy + 1) * w..][..w]);
                for (ox, o) in out_row.iter_mut().enumerate() {
                    *o =
                        (top[2 * ox] + top[2 * ox + 1] + bottom[2 * ox] + bottom[2 * ox + 1]) / 4.0;
                }
            }
        },
    )
}

/// `x` cut into `blocks` equal blocks (its images, or its planes: each image's each channel),
/// `f(input block, output block)` on each, into a result of `shape` cut the same way.
fn map_blocks(
    x: Tensor<4>,
    blocks: usize,
    shape: [usize; 4],
    f: impl Fn(&[f32], &mut [f32]) + Sync + Send,
) -> Tensor<4> {
    let device = x.device();
    let input = x.into_data();
    let input = input.as_slice::<f32>().expect("f32 input");
    let mut output = vec![0.0f32; shape.iter().product()];
    if let (Some(per_input), Some(per_output)) = (
        input.len().checked_div(blocks),
        output.len().checked_div(blocks),
    ) {
        for_each_chunk(&mut output, per_output, |i, out| {
            f(&input[i * per_input..(i + 1) * per_input], out)
        });
    }
    Tensor::from_data(TensorData::new(output, shape), &device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;

    /// burn's convolution and `ours(x, weight)` on the same random input: same shape, same
    /// values within 1e-5.
    fn assert_matches_burn_conv(
        [batch, c_in, c_out, h, w, kernel, stride, pad]: [usize; 8],
        ours: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
    ) {
        let device = Device::flex();
        let conv = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(false)
            .init(&device);
        let x = Tensor::<4>::random(
            [batch, c_in, h, w],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        assert!(applies(&x));
        let expected = conv.forward(x.clone());
        let got = ours(x, conv.weight.val());
        assert_eq!(got.dims(), expected.dims());
        let diff: f32 = (got - expected).abs().max().into_scalar();
        assert!(
            diff < 1e-5,
            "{batch}×{c_in}×{h}×{w}, kernel {kernel}: max |Δ| {diff}"
        );
    }

    /// 3×3 (kn2row): padding on every border, odd sizes, a batch, a 1×1 image.
    #[test]
    fn kn2row_matches_burn_conv() {
        for [batch, c_in, c_out, h, w] in [[1, 5, 3, 7, 9], [3, 16, 8, 4, 5], [2, 2, 4, 1, 1]] {
            assert_matches_burn_conv([batch, c_in, c_out, h, w, 3, 1, 1], conv3x3);
        }
    }

    /// Strided (im2col): the stem's geometry and small odd ones.
    #[test]
    fn im2col_matches_burn_conv() {
        for case in [
            [1, 3, 8, 20, 17, 7, 2, 3],
            [3, 2, 4, 9, 9, 3, 2, 1],
            [2, 1, 2, 5, 6, 3, 1, 0],
        ] {
            let [.., stride, pad] = case;
            assert_matches_burn_conv(case, |x, weight| conv_im2col(x, weight, stride, pad));
        }
    }

    /// Same values as burn's pooling (odd and even sizes, a batch, negative values at the borders).
    #[test]
    fn pooling_matches_burn() {
        use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
        let device = Device::flex();
        let max = MaxPool2dConfig::new([3, 3])
            .with_strides([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init();
        let avg = AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
        for (batch, channels, h, w) in [(1, 1, 1, 1), (2, 3, 7, 8), (3, 2, 8, 5), (1, 4, 2, 3)] {
            let x = Tensor::<4>::random(
                [batch, channels, h, w],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            let expected = max.forward(x.clone());
            let got = max_pool_3x3_s2(x.clone());
            assert_eq!(got.dims(), expected.dims(), "max {h}×{w}");
            assert_eq!(
                got.into_data().try_to_vec::<f32>().unwrap(),
                expected.into_data().try_to_vec::<f32>().unwrap()
            );
            if h >= 2 && w >= 2 {
                let expected = avg.forward(x.clone());
                let got = avg_pool_2x2(x);
                assert_eq!(got.dims(), expected.dims(), "avg {h}×{w}");
                let diff: f32 = (got - expected).abs().max().into_scalar();
                assert!(diff < 1e-6, "avg {h}×{w}: max |Δ| {diff}");
            }
        }
    }

    /// An input so small that the last blocks' feature maps are empty gives what burn's ops give
    /// (NaN after the empty average), not a panic.
    #[test]
    fn tiny_inputs_do_not_panic() {
        let device = Device::flex();
        let model = crate::model::DenseNetConfig::tiny(1).init(&device);
        for size in [1, 8, 16] {
            let x = Tensor::<4>::zeros([1, 3, size, size], &device);
            assert_eq!(model.forward(x).dims(), [1, 1]);
        }
    }

    #[test]
    fn not_for_autodiff() {
        let x = Tensor::<4>::zeros([1, 1, 3, 3], &Device::flex().autodiff());
        assert!(!applies(&x));
    }
}
