//! The training fast path's computations on whole NCHW batches of plain `f32` slices: the
//! convolutions (forward, input gradient, weight gradient) as matrix products
//! ([`crate::model::kernels`]) and batch norm with its ReLU fused into one forward and one
//! backward kernel. Each image (or each channel) is one task on the CPU's threads. (Multiplying
//! the whole batch at once on DenseNet's small last-block maps was tried and measured slower:
//! 13.2–13.5 against 16.0–16.4 images/s at 128², the copies costing more than the thin products.)

use crate::model::kernels::{self, Geometry, View, for_each_chunk, gemm_parallelism};
use rayon::prelude::*;

/// The two convolutions a matrix product runs without im2col: a 1×1 (`[C_out, C_in]`) and a 3×3
/// "same" ([`kernels::conv3x3_taps`]).
enum Kernel<'a> {
    Pointwise(View<'a>),
    Taps(Vec<f32>),
}

/// The kernel of a 1×1 or 3×3 "same" convolution (`None`: another geometry), or with
/// `input_gradient` that of its input gradient: `Wᵀ` for a 1×1, the convolution by the
/// transposed, rotated kernel for a 3×3.
fn matrix_kernel<'a>(
    g: &Geometry,
    weight: &'a [f32],
    c_out: usize,
    input_gradient: bool,
) -> Option<Kernel<'a>> {
    if g.is_pointwise() {
        Some(Kernel::Pointwise(if input_gradient {
            View::transposed(weight, g.c_in)
        } else {
            View::rows(weight, g.c_in)
        }))
    } else if g.is_3x3_same() {
        let taps = kernels::conv3x3_taps(weight, c_out, g.c_in, input_gradient);
        Some(Kernel::Taps(taps))
    } else {
        None
    }
}

/// `x` `[B, c_in, h·w]` convolved by `kernel` (stride 1, size-preserving) into
/// `[B, c_out, h·w]`, one image per task.
fn convolve_batch(
    kernel: &Kernel,
    x: &[f32],
    batch: usize,
    (c_in, c_out): (usize, usize),
    (h, w): (usize, usize),
) -> Vec<f32> {
    let pixels = h * w;
    let mut out = vec![0.0f32; batch * c_out * pixels];
    let parallelism = gemm_parallelism(batch);
    for_each_chunk(&mut out, c_out * pixels, |i, out| {
        let x = &x[i * c_in * pixels..][..c_in * pixels];
        match kernel {
            Kernel::Pointwise(matrix) => {
                let input = View::rows(x, pixels);
                let dims = (c_out, c_in, pixels);
                kernels::gemm_into(out, pixels, *matrix, input, dims, false, parallelism);
            }
            Kernel::Taps(taps) => {
                kernels::conv3x3_image(taps, x, out, (c_in, c_out, h, w), parallelism)
            }
        }
    });
    out
}

/// `x` `[B, C_in, H, W]` convolved with `weight` `[C_out, C_in, k, k]`, no bias:
/// `[B, C_out, out_h, out_w]`.
pub fn conv_forward(
    x: &[f32],
    batch: usize,
    g: &Geometry,
    weight: &[f32],
    c_out: usize,
) -> Vec<f32> {
    if let Some(kernel) = matrix_kernel(g, weight, c_out, false) {
        return convolve_batch(&kernel, x, batch, (g.c_in, c_out), (g.h, g.w));
    }
    let plane_in = g.c_in * g.h * g.w;
    let pixels = g.out_h() * g.out_w();
    let mut out = vec![0.0f32; batch * c_out * pixels];
    let parallelism = gemm_parallelism(batch);
    for_each_chunk(&mut out, c_out * pixels, |i, out| {
        let x = &x[i * plane_in..][..plane_in];
        kernels::conv_im2col_image(weight, x, out, g, c_out, parallelism);
    });
    out
}

/// The gradient of [`conv_forward`] with respect to its input, from the output's gradient `dy`
/// `[B, C_out, out_h, out_w]`: `[B, C_in, H, W]`.
pub fn conv_input_grad(
    dy: &[f32],
    batch: usize,
    g: &Geometry,
    weight: &[f32],
    c_out: usize,
) -> Vec<f32> {
    if let Some(kernel) = matrix_kernel(g, weight, c_out, true) {
        return convolve_batch(&kernel, dy, batch, (c_out, g.c_in), (g.h, g.w));
    }
    // Any other geometry: Wᵀ · dy per image, scattered back onto the input pixels.
    let plane_in = g.c_in * g.h * g.w;
    let pixels = g.out_h() * g.out_w();
    let k = g.taps();
    let mut dx = vec![0.0f32; batch * plane_in];
    let parallelism = gemm_parallelism(batch);
    for_each_chunk(&mut dx, plane_in, |i, dx| {
        let dy = View::rows(&dy[i * c_out * pixels..][..c_out * pixels], pixels);
        let mut col = vec![0.0f32; k * pixels];
        let weight_t = View::transposed(weight, k);
        kernels::gemm_into(
            &mut col,
            pixels,
            weight_t,
            dy,
            (k, c_out, pixels),
            false,
            parallelism,
        );
        kernels::col2im_add(&col, g, dx);
    });
    dx
}

/// The gradient of [`conv_forward`] with respect to its weight: `Σ_images dy · im2col(x)ᵀ`,
/// `[C_out, C_in·k·k]` (a 1×1 convolution multiplies by the input itself). Accumulated as
/// `dWᵀ = im2col(x) · dyᵀ` and transposed once at the end.
pub fn conv_weight_grad(
    x: &[f32],
    dy: &[f32],
    batch: usize,
    g: &Geometry,
    c_out: usize,
) -> Vec<f32> {
    let plane_in = g.c_in * g.h * g.w;
    let pixels = g.out_h() * g.out_w();
    let k = g.taps();
    let size = c_out * k;
    // dWᵀ += im2col(x_i) · dy_iᵀ (x_i itself for a 1×1).
    let add_image = |dw: &mut Vec<f32>, i: usize, parallelism| {
        let x = &x[i * plane_in..][..plane_in];
        let col;
        let columns = if g.is_pointwise() {
            x
        } else {
            col = kernels::im2col(x, g);
            &col
        };
        let dy = View::transposed(&dy[i * c_out * pixels..][..c_out * pixels], pixels);
        let dims = (k, pixels, c_out);
        kernels::gemm_into(
            dw,
            c_out,
            View::rows(columns, pixels),
            dy,
            dims,
            true,
            parallelism,
        );
    };
    let transposed = if batch < rayon::current_num_threads() {
        let mut dw = vec![0.0f32; size];
        (0..batch).for_each(|i| add_image(&mut dw, i, gemm::Parallelism::Rayon(0)));
        dw
    } else {
        // One partial sum per thread's run of images, then their sum.
        (0..batch)
            .into_par_iter()
            .fold(
                || vec![0.0f32; size],
                |mut dw, i| {
                    add_image(&mut dw, i, gemm::Parallelism::None);
                    dw
                },
            )
            .reduce(
                || vec![0.0f32; size],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                },
            )
    };
    let mut dw = vec![0.0f32; size];
    for (row, column) in transposed.chunks_exact(c_out).enumerate() {
        for (o, value) in column.iter().enumerate() {
            dw[o * k + row] = *value;
        }
    }
    dw
}

/// A batch norm's shape: `[batch, channels, pixels per plane]`.
#[derive(Clone, Copy, Debug)]
pub struct Planes {
    pub batch: usize,
    pub channels: usize,
    pub pixels: usize,
}

impl Planes {
    /// Channel c's planes, one per image.
    fn of_channel<'a>(&self, data: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        (0..self.batch).map(move |b| &data[(b * self.channels + c) * self.pixels..][..self.pixels])
    }
    fn count(&self) -> f64 {
        (self.batch * self.pixels) as f64
    }
}

/// Per-channel statistics of a batch norm in training: the batch mean, the biased variance
/// (what the running statistics take) and `1/√(var + ε)`.
pub struct BatchStats {
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
    pub inv_std: Vec<f32>,
}

/// One channel's affine map `y = γ · (x − mean) · inv_std + β` (then ReLU when `relu`): the forward
/// and the backward evaluate this one expression, so that the ReLU mask the backward recomputes is
/// the forward's exactly.
#[derive(Clone, Copy)]
struct Affine {
    mean: f32,
    inv_std: f32,
    gamma: f32,
    beta: f32,
    relu: bool,
}

impl Affine {
    #[inline(always)]
    fn normalised(&self, x: f32) -> f32 {
        (x - self.mean) * self.inv_std
    }
    #[inline(always)]
    fn pre_activation(&self, x: f32) -> f32 {
        self.normalised(x) * self.gamma + self.beta
    }
    /// The output's gradient `g` where the ReLU let the value through, 0 where it did not.
    #[inline(always)]
    fn passed(&self, x: f32, g: f32) -> f32 {
        if !self.relu || self.pre_activation(x) > 0.0 {
            g
        } else {
            0.0
        }
    }
}

/// Lanes of the running sums below: independent accumulators the compiler keeps in vector
/// registers (one f32 accumulator would chain every addition on the one before).
const LANES: usize = 16;

/// `Σ f(a[i], b[i])` over two equal-length slices, in [`LANES`] partial sums.
#[inline(always)]
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| f(*x, *y))
        .sum();
    for (xs, ys) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            acc[lane] += f(xs[lane], ys[lane]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Batch norm with the batch's own statistics (then ReLU when `relu`), and those statistics.
/// Two passes to read (mean, then the centred sum of squares, as burn's own op) and one to write.
pub fn batch_norm_forward(
    x: &[f32],
    p: Planes,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
) -> (Vec<f32>, BatchStats) {
    let (mean, variance): (Vec<f32>, Vec<f32>) = (0..p.channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = p
                .of_channel(x, c)
                .map(|plane| lane_sum(plane, plane, |v, _| v) as f64)
                .sum();
            let mean = (sum / p.count()) as f32;
            let squares: f64 = p
                .of_channel(x, c)
                .map(|plane| lane_sum(plane, plane, |v, _| (v - mean) * (v - mean)) as f64)
                .sum();
            (mean, (squares / p.count()) as f32)
        })
        .unzip();
    let inv_std: Vec<f32> = variance
        .iter()
        .map(|v| (1.0 / ((*v as f64) + epsilon).sqrt()) as f32)
        .collect();
    let affine = |c: usize| Affine {
        mean: mean[c],
        inv_std: inv_std[c],
        gamma: gamma[c],
        beta: beta[c],
        relu,
    };
    let mut y = vec![0.0f32; x.len()];
    for_each_chunk(&mut y, p.pixels, |i, out| {
        let a = affine(i % p.channels);
        let input = &x[i * p.pixels..][..p.pixels];
        if relu {
            for (o, v) in out.iter_mut().zip(input) {
                *o = a.pre_activation(*v).max(0.0);
            }
        } else {
            for (o, v) in out.iter_mut().zip(input) {
                *o = a.pre_activation(*v);
            }
        }
    });
    let stats = BatchStats {
        mean,
        variance,
        inv_std,
    };
    (y, stats)
}

/// Gradients of [`batch_norm_forward`] (input, γ, β) from the output's gradient `dy`: one pass
/// for the per-channel sums `Σg` and `Σg·x̂` (g = dy where the ReLU let the value through), one
/// for `dx = γ · inv_std · (g − Σg/N − x̂ · Σg·x̂/N)`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    x: &[f32],
    dy: &[f32],
    p: Planes,
    gamma: &[f32],
    beta: &[f32],
    (mean, inv_std): (&[f32], &[f32]),
    relu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let affine = |c: usize| Affine {
        mean: mean[c],
        inv_std: inv_std[c],
        gamma: gamma[c],
        beta: beta[c],
        relu,
    };
    let (gamma_grad, beta_grad): (Vec<f32>, Vec<f32>) = (0..p.channels)
        .into_par_iter()
        .map(|c| {
            let a = affine(c);
            let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
            for (xs, gs) in p.of_channel(x, c).zip(p.of_channel(dy, c)) {
                sum_g += lane_sum(xs, gs, |v, g| a.passed(v, g)) as f64;
                sum_gx += lane_sum(xs, gs, |v, g| a.passed(v, g) * a.normalised(v)) as f64;
            }
            (sum_gx as f32, sum_g as f32)
        })
        .unzip();
    let n = p.count() as f32;
    let mut dx = vec![0.0f32; x.len()];
    for_each_chunk(&mut dx, p.pixels, |i, out| {
        let c = i % p.channels;
        let a = affine(c);
        let (scale, mean_g, mean_gx) = (a.gamma * a.inv_std, beta_grad[c] / n, gamma_grad[c] / n);
        let xs = &x[i * p.pixels..][..p.pixels];
        let gs = &dy[i * p.pixels..][..p.pixels];
        for ((o, v), g) in out.iter_mut().zip(xs).zip(gs) {
            *o = scale * (a.passed(*v, *g) - mean_g - a.normalised(*v) * mean_gx);
        }
    });
    (dx, gamma_grad, beta_grad)
}
