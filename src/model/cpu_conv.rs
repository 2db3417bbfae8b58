//! The dense layers' 3×3 convolution (stride 1, padding 1, no bias) for inference on the CPU, as
//! one matrix product and nine shifted sums ("kn2row", Vasudevan et al., 2017).
//!
//! burn's flex backend runs a 3×3 convolution as im2col tiles of 512 pixels, each a thin matrix
//! product (32 output channels × 1,152) that repacks the weights every tile; in DenseNet121 these
//! convolutions are about a third of the forward time. Here the nine kernel taps become the rows of
//! one well-shaped product, `[9·C_out, C_in] × [C_in, H·W]`, taken straight on the NCHW input
//! (no im2col copy), and each output plane is the sum of nine planes of that product, shifted by
//! the tap's offset; the zero padding is the shifted range's bounds. Measured on this model
//! (README, Benchmarks): the 3×3 convolutions about twice as fast, same result up to f32
//! rounding (the sums run in another order).
//!
//! Only for tensors on the flex (CPU) device without autodiff: training needs burn's gradients,
//! the WebGPU path burn's shaders ([`applies`]).

use burn::prelude::*;

/// Whether [`conv3x3`] may replace burn's convolution for this input.
pub fn applies(x: &Tensor<4>) -> bool {
    !x.is_autodiff() && x.device() == Device::flex()
}

/// `x` `[B, C_in, H, W]` convolved with `weight` `[C_out, C_in, 3, 3]`, stride 1, padding 1.
pub fn conv3x3(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    let [batch, c_in, h, w] = x.dims();
    let [c_out, weight_in, kh, kw] = weight.dims();
    assert!(weight_in == c_in && kh == 3 && kw == 3, "conv3x3: weight {:?} for input {:?}", weight.dims(), x.dims());
    // Row (tap · C_out + o) holds weight[o, :, ky, kx], tap = 3·ky + kx.
    let taps = weight.permute([2, 3, 0, 1]).reshape([9 * c_out, c_in]).into_data();
    let taps = taps.as_slice::<f32>().expect("f32 weights");
    let input = x.into_data();
    let input = input.as_slice::<f32>().expect("f32 input");
    let plane = h * w;
    let mut output = vec![0.0f32; batch * c_out * plane];
    for_each_image(&mut output, c_out * plane, |image, out| {
        let x = &input[image * c_in * plane..(image + 1) * c_in * plane];
        let mut product = vec![0.0f32; 9 * c_out * plane];
        // SAFETY: `taps` is [9·C_out, C_in], `x` is [C_in, H·W] and `product` is
        // [9·C_out, H·W], all row-major and of exactly these lengths.
        unsafe {
            gemm::gemm(
                9 * c_out,
                plane,
                c_in,
                product.as_mut_ptr(),
                1,
                plane as isize,
                false,
                taps.as_ptr(),
                1,
                c_in as isize,
                x.as_ptr(),
                1,
                plane as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm_parallelism(batch),
            );
        }
        for (o, out) in out.chunks_exact_mut(plane).enumerate() {
            for tap in 0..9 {
                let source = &product[(tap * c_out + o) * plane..][..plane];
                add_shifted(out, source, (h, w), (tap / 3) as isize - 1, (tap % 3) as isize - 1);
            }
        }
    });
    Tensor::from_data(TensorData::new(output, [batch, c_out, h, w]), &device)
}

/// `out[y][x] += source[y + dy][x + dx]` wherever the source pixel lies inside the image (the
/// convolution's zero padding is what lies outside).
fn add_shifted(out: &mut [f32], source: &[f32], (h, w): (usize, usize), dy: isize, dx: isize) {
    let rows = (-dy).max(0) as usize..(h as isize - dy).min(h as isize) as usize;
    let cols = (-dx).max(0) as usize..(w as isize - dx).min(w as isize) as usize;
    for y in rows {
        let from = ((y as isize + dy) as usize) * w;
        let out_row = &mut out[y * w + cols.start..y * w + cols.end];
        let source_row = &source[(from as isize + cols.start as isize + dx) as usize..][..out_row.len()];
        for (o, s) in out_row.iter_mut().zip(source_row) {
            *o += s;
        }
    }
}

/// One image per task when there are enough images for the threads; otherwise the matrix product
/// itself runs on all threads.
#[cfg(not(target_arch = "wasm32"))]
fn for_each_image(output: &mut [f32], per_image: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    use rayon::prelude::*;
    output.par_chunks_mut(per_image).enumerate().for_each(|(i, out)| f(i, out));
}

#[cfg(not(target_arch = "wasm32"))]
fn gemm_parallelism(batch: usize) -> gemm::Parallelism {
    if batch < rayon::current_num_threads() { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None }
}

/// The browser's CPU path runs on one thread.
#[cfg(target_arch = "wasm32")]
fn for_each_image(output: &mut [f32], per_image: usize, f: impl Fn(usize, &mut [f32])) {
    output.chunks_mut(per_image).enumerate().for_each(|(i, out)| f(i, out));
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

    /// Same result as burn's convolution, with padding on every border, odd sizes and a batch.
    #[test]
    fn matches_burn_conv() {
        let device = Device::flex();
        for (batch, c_in, c_out, h, w) in [(1, 5, 3, 7, 9), (3, 16, 8, 4, 5), (2, 2, 4, 1, 1)] {
            let conv = Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(&device);
            let x = Tensor::<4>::random([batch, c_in, h, w], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
            assert!(applies(&x));
            let expected = conv.forward(x.clone());
            let got = conv3x3(x, conv.weight.val());
            assert_eq!(got.dims(), expected.dims());
            let diff: f32 = (got - expected).abs().max().into_scalar();
            assert!(diff < 1e-5, "max |Δ| {diff}");
        }
    }

    #[test]
    fn not_for_autodiff() {
        let x = Tensor::<4>::zeros([1, 1, 3, 3], &Device::flex().autodiff());
        assert!(!applies(&x));
    }
}
