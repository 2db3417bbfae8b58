//! Inference kernels for the CPU where burn's flex backend is slow on DenseNet's shapes. Only for
//! tensors on the flex device without autodiff ([`applies`]): training needs burn's gradients,
//! the WebGPU path burn's shaders. Each is checked against burn's own op in the tests below;
//! the figures are in docs/benchmarks.md ("What changed the figures").
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
    // Row (tap · C_out + o) holds weight[o, :, ky, kx], tap = 3·ky + kx.
    let taps = weight
        .permute([2, 3, 0, 1])
        .reshape([9 * c_out, c_in])
        .into_data();
    let taps = taps.as_slice::<f32>().expect("f32 weights");
    let plane = h * w;
    map_blocks(x, batch, [batch, c_out, h, w], |x, out| {
        let mut product = vec![0.0f32; 9 * c_out * plane];
        matmul_into(
            &mut product,
            plane,
            taps,
            x,
            (9 * c_out, c_in, plane),
            gemm_parallelism(batch),
        );
        for (o, out) in out.chunks_exact_mut(plane).enumerate() {
            for tap in 0..9 {
                let source = &product[(tap * c_out + o) * plane..][..plane];
                add_shifted(
                    out,
                    source,
                    (h, w),
                    (tap / 3) as isize - 1,
                    (tap % 3) as isize - 1,
                );
            }
        }
    })
}

/// `out[y][x] += source[y + dy][x + dx]` wherever the source pixel lies inside the image (the
/// convolution's zero padding is what lies outside).
fn add_shifted(out: &mut [f32], source: &[f32], (h, w): (usize, usize), dy: isize, dx: isize) {
    let rows = (-dy).max(0) as usize..(h as isize - dy).min(h as isize) as usize;
    let cols = (-dx).max(0) as usize..(w as isize - dx).min(w as isize) as usize;
    for y in rows {
        let from = ((y as isize + dy) as usize) * w;
        let out_row = &mut out[y * w + cols.start..y * w + cols.end];
        let source_row =
            &source[(from as isize + cols.start as isize + dx) as usize..][..out_row.len()];
        for (o, s) in out_row.iter_mut().zip(source_row) {
            *o += s;
        }
    }
}

/// `x` `[B, C_in, H, W]` convolved with `weight` `[C_out, C_in, kh, kw]` at `stride`, with
/// `padding` zeros on every side, no bias.
pub fn conv_im2col(x: Tensor<4>, weight: Tensor<4>, stride: usize, padding: usize) -> Tensor<4> {
    let [batch, c_in, h, w] = x.dims();
    let [c_out, weight_in, kh, kw] = weight.dims();
    assert!(
        weight_in == c_in && h + 2 * padding >= kh && w + 2 * padding >= kw,
        "conv_im2col: weight {:?} for input {:?}",
        weight.dims(),
        x.dims()
    );
    let (out_h, out_w) = (
        (h + 2 * padding - kh) / stride + 1,
        (w + 2 * padding - kw) / stride + 1,
    );
    let k = c_in * kh * kw;
    // Row o: weight[o] flattened as (channel, ky, kx), the order of the im2col rows below.
    let weights = weight.reshape([c_out, k]).into_data();
    let weights = weights.as_slice::<f32>().expect("f32 weights");
    let plane = out_h * out_w;
    let rows_per_tile = (4096 / out_w).clamp(1, out_h);
    map_blocks(x, batch, [batch, c_out, out_h, out_w], |x, out| {
        for first_row in (0..out_h).step_by(rows_per_tile) {
            let rows = rows_per_tile.min(out_h - first_row);
            let n = rows * out_w;
            // col[(c, ky, kx)][pixel]: the input value under tap (ky, kx) of that output pixel.
            let mut col = vec![0.0f32; k * n];
            for (tap, col_row) in col.chunks_exact_mut(n).enumerate() {
                let (c, ky, kx) = (tap / (kh * kw), tap / kw % kh, tap % kw);
                for r in 0..rows {
                    let Some(y) = ((first_row + r) * stride + ky)
                        .checked_sub(padding)
                        .filter(|&y| y < h)
                    else {
                        continue;
                    };
                    let source = &x[(c * h + y) * w..][..w];
                    for (ox, value) in col_row[r * out_w..(r + 1) * out_w].iter_mut().enumerate() {
                        if let Some(v) = (ox * stride + kx)
                            .checked_sub(padding)
                            .and_then(|x| source.get(x))
                        {
                            *value = *v;
                        }
                    }
                }
            }
            // The tile's output pixels are columns first_row·out_w .. + n of the image's
            // [C_out, out_h·out_w] result.
            matmul_into(
                &mut out[first_row * out_w..],
                plane,
                weights,
                &col,
                (c_out, k, n),
                gemm_parallelism(batch),
            );
        }
    })
}

/// `lhs · rhs` for row-major `lhs` `[m, k]` and `rhs` `[k, n]`, row i written to
/// `dst[i · dst_row_stride..][..n]` (a window of columns of a wider matrix when the stride is
/// more than n), by the gemm crate.
fn matmul_into(
    dst: &mut [f32],
    dst_row_stride: usize,
    lhs: &[f32],
    rhs: &[f32],
    (m, k, n): (usize, usize, usize),
    parallelism: gemm::Parallelism,
) {
    assert!(
        lhs.len() >= m * k
            && rhs.len() >= k * n
            && dst_row_stride >= n
            && (m == 0 || dst.len() >= (m - 1) * dst_row_stride + n),
        "matmul_into: buffers too small for {m}×{k}×{n}"
    );
    // SAFETY: every element gemm reads or writes lies inside the slices, as just checked.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            false,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
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

/// `f(index, chunk)` for each `per_chunk`-long chunk of `output`, in parallel on the CPU's threads
/// (nothing for an empty output: a feature map can shrink to nothing on a tiny input).
#[cfg(not(target_arch = "wasm32"))]
fn for_each_chunk(
    output: &mut [f32],
    per_chunk: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    use rayon::prelude::*;
    if per_chunk > 0 {
        output
            .par_chunks_mut(per_chunk)
            .enumerate()
            .for_each(|(i, out)| f(i, out));
    }
}

/// One image per task when there are enough images for the threads; otherwise the matrix product
/// itself runs on all threads.
#[cfg(not(target_arch = "wasm32"))]
fn gemm_parallelism(batch: usize) -> gemm::Parallelism {
    if batch < rayon::current_num_threads() {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// The browser's CPU path runs on one thread.
#[cfg(target_arch = "wasm32")]
fn for_each_chunk(output: &mut [f32], per_chunk: usize, f: impl Fn(usize, &mut [f32])) {
    if per_chunk > 0 {
        output
            .chunks_mut(per_chunk)
            .enumerate()
            .for_each(|(i, out)| f(i, out));
    }
}

#[cfg(target_arch = "wasm32")]
fn gemm_parallelism(_batch: usize) -> gemm::Parallelism {
    gemm::Parallelism::None
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
