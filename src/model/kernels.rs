//! Convolution kernels on plain `f32` slices (one image, NCHW), shared by the CPU inference ops
//! ([`super::cpu_kernels`]) and the training fast path ([`super::flex_training`]). Each is a
//! matrix product by the gemm crate (the one burn's flex uses) plus a cheap rearrangement:
//!
//! - [`conv3x3_image`]: a 3×3, stride 1, padding 1 convolution as one product and nine shifted
//!   sums ("kn2row", Vasudevan et al., 2017): the nine kernel taps become the rows of one
//!   well-shaped product `[9·C_out, C_in] × [C_in, H·W]` taken straight on the input, and each
//!   output plane is the sum of nine planes of that product shifted by the tap's offset; the zero
//!   padding is the shifted range's bounds.
//! - [`conv_im2col_image`]: any other geometry (the stem's 7×7, stride 2) as im2col tiles of
//!   about 4,096 output pixels, each one product `[C_out, C_in·k·k] × [C_in·k·k, pixels]`.
//! - [`im2col`] / [`col2im_add`]: the columns a weight gradient multiplies, and the scatter an
//!   input gradient of a strided convolution needs.

/// A convolution's input and kernel geometry (square kernel, same stride and padding on both
/// axes, no dilation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Geometry {
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding - self.kernel) / self.stride + 1
    }
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding - self.kernel) / self.stride + 1
    }
    /// Rows of the im2col matrix: one per (input channel, ky, kx), the order of a weight's
    /// `[C_out, C_in, k, k]` row.
    pub fn taps(&self) -> usize {
        self.c_in * self.kernel * self.kernel
    }
    #[cfg(not(target_arch = "wasm32"))] // training only
    /// The dense layers' 3×3 convolution, which [`conv3x3_image`] runs.
    pub fn is_3x3_same(&self) -> bool {
        self.kernel == 3 && self.stride == 1 && self.padding == 1
    }
    #[cfg(not(target_arch = "wasm32"))] // training only
    /// A 1×1 convolution: a plain matrix product per image.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == 1 && self.stride == 1 && self.padding == 0
    }
}

/// A read-only matrix: element (i, j) at `data[i · row_stride + j · col_stride]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A row-major matrix of `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }
    #[cfg(not(target_arch = "wasm32"))] // training only
    /// The transpose of a row-major matrix of `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst = lhs · rhs` (or `dst += lhs · rhs` when `accumulate`) for `lhs` `[m, k]` and `rhs`
/// `[k, n]`, row i of the result at `dst[i · dst_row_stride..][..n]` (a window of columns of a
/// wider matrix when the stride is more than n).
pub fn gemm_into(
    dst: &mut [f32],
    dst_row_stride: usize,
    lhs: View,
    rhs: View,
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    assert!(
        lhs.fits(m, k)
            && rhs.fits(k, n)
            && dst_row_stride >= n
            && (m == 0 || n == 0 || dst.len() >= (m - 1) * dst_row_stride + n),
        "gemm_into: buffers too small for {m}×{k}×{n}"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: every element gemm reads or writes lies inside the slices, as just checked.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The `[9·C_out, C_in]` matrix [`conv3x3_image`] multiplies: row (tap · C_out + o) holds
/// `weight[o, :, ky, kx]`, tap = 3·ky + kx. With `flipped`, the kernel of the input gradient
/// instead: the weight transposed (C_in and C_out swapped) and rotated by 180°.
pub fn conv3x3_taps(weight: &[f32], c_out: usize, c_in: usize, flipped: bool) -> Vec<f32> {
    assert_eq!(weight.len(), c_out * c_in * 9, "conv3x3_taps: weight size");
    let (rows, cols) = if flipped {
        (c_in, c_out)
    } else {
        (c_out, c_in)
    };
    let mut taps = vec![0.0f32; 9 * rows * cols];
    for tap in 0..9 {
        for r in 0..rows {
            let row = &mut taps[(tap * rows + r) * cols..][..cols];
            for (c, value) in row.iter_mut().enumerate() {
                *value = if flipped {
                    weight[(c * c_in + r) * 9 + (8 - tap)]
                } else {
                    weight[(r * c_in + c) * 9 + tap]
                };
            }
        }
    }
    taps
}

/// One image `x` `[C_in, H, W]` convolved (3×3, stride 1, padding 1) by the [`conv3x3_taps`]
/// matrix, into `out` `[C_out, H, W]`.
pub fn conv3x3_image(
    taps: &[f32],
    x: &[f32],
    out: &mut [f32],
    (c_in, c_out, h, w): (usize, usize, usize, usize),
    parallelism: gemm::Parallelism,
) {
    let plane = h * w;
    let mut product = vec![0.0f32; 9 * c_out * plane];
    gemm_into(
        &mut product,
        plane,
        View::rows(taps, c_in),
        View::rows(x, plane),
        (9 * c_out, c_in, plane),
        false,
        parallelism,
    );
    out.fill(0.0);
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

/// The input pixel under tap (ky, kx) of output pixel (oy, ox) along one axis, `None` in the
/// padding.
fn source_index(out: usize, tap: usize, g: &Geometry, size: usize) -> Option<usize> {
    (out * g.stride + tap)
        .checked_sub(g.padding)
        .filter(|&i| i < size)
}

/// Output rows `first_row .. first_row + rows` of one image's im2col matrix into `col`
/// `[C_in·k·k, rows·out_w]`: `col[(c, ky, kx)][pixel]` is the input value under that tap of that
/// output pixel, 0 in the padding.
fn im2col_rows(x: &[f32], g: &Geometry, first_row: usize, rows: usize, col: &mut [f32]) {
    let (k, out_w) = (g.kernel, g.out_w());
    let n = rows * out_w;
    for (tap, col_row) in col.chunks_exact_mut(n).enumerate() {
        let (c, ky, kx) = (tap / (k * k), tap / k % k, tap % k);
        col_row.fill(0.0);
        for r in 0..rows {
            let Some(y) = source_index(first_row + r, ky, g, g.h) else {
                continue;
            };
            let source = &x[(c * g.h + y) * g.w..][..g.w];
            let target = &mut col_row[r * out_w..(r + 1) * out_w];
            if g.stride == 1 {
                // Output pixels ox whose input pixel ox + kx − padding lies in the row: one copy.
                let start = g.padding.saturating_sub(kx).min(out_w);
                let end = (g.w + g.padding).saturating_sub(kx).min(out_w);
                if start < end {
                    let from = start + kx - g.padding;
                    target[start..end].copy_from_slice(&source[from..from + (end - start)]);
                }
                continue;
            }
            for (ox, value) in target.iter_mut().enumerate() {
                if let Some(x) = source_index(ox, kx, g, g.w) {
                    *value = source[x];
                }
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))] // training only
/// One image's whole im2col matrix `[C_in·k·k, out_h·out_w]`.
pub fn im2col(x: &[f32], g: &Geometry) -> Vec<f32> {
    let mut col = vec![0.0f32; g.taps() * g.out_h() * g.out_w()];
    im2col_rows(x, g, 0, g.out_h(), &mut col);
    col
}

#[cfg(not(target_arch = "wasm32"))] // training only
/// The adjoint of [`im2col`]: adds each column entry back onto the input pixel it was read from
/// (padding entries are dropped), into `dx` `[C_in, H, W]`.
pub fn col2im_add(col: &[f32], g: &Geometry, dx: &mut [f32]) {
    let (k, out_h, out_w) = (g.kernel, g.out_h(), g.out_w());
    for (tap, col_row) in col.chunks_exact(out_h * out_w).enumerate() {
        let (c, ky, kx) = (tap / (k * k), tap / k % k, tap % k);
        for oy in 0..out_h {
            let Some(y) = source_index(oy, ky, g, g.h) else {
                continue;
            };
            let target = &mut dx[(c * g.h + y) * g.w..][..g.w];
            for (ox, value) in col_row[oy * out_w..(oy + 1) * out_w].iter().enumerate() {
                if let Some(x) = source_index(ox, kx, g, g.w) {
                    target[x] += value;
                }
            }
        }
    }
}

/// One image `x` `[C_in, H, W]` convolved by `weight` `[C_out, C_in·k·k]` into `out`
/// `[C_out, out_h, out_w]`, in im2col tiles of about 4,096 output pixels.
pub fn conv_im2col_image(
    weight: &[f32],
    x: &[f32],
    out: &mut [f32],
    g: &Geometry,
    c_out: usize,
    parallelism: gemm::Parallelism,
) {
    let (out_h, out_w, k) = (g.out_h(), g.out_w(), g.taps());
    let plane = out_h * out_w;
    let rows_per_tile = (4096 / out_w).clamp(1, out_h.max(1));
    let mut col = Vec::new();
    for first_row in (0..out_h).step_by(rows_per_tile) {
        let rows = rows_per_tile.min(out_h - first_row);
        let n = rows * out_w;
        col.resize(k * n, 0.0);
        im2col_rows(x, g, first_row, rows, &mut col);
        // The tile's output pixels are columns first_row·out_w .. + n of the image's
        // [C_out, out_h·out_w] result.
        gemm_into(
            &mut out[first_row * out_w..],
            plane,
            View::rows(weight, k),
            View::rows(&col, n),
            (c_out, k, n),
            false,
            parallelism,
        );
    }
}

/// `f(index, chunk)` for each `per_chunk`-long chunk of `output`, in parallel on the CPU's threads
/// (nothing for an empty output: a feature map can shrink to nothing on a tiny input).
#[cfg(not(target_arch = "wasm32"))]
pub fn for_each_chunk(
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
pub fn gemm_parallelism(batch: usize) -> gemm::Parallelism {
    if batch < rayon::current_num_threads() {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// The browser's CPU path runs on one thread.
#[cfg(target_arch = "wasm32")]
pub fn for_each_chunk(output: &mut [f32], per_chunk: usize, f: impl Fn(usize, &mut [f32])) {
    if per_chunk > 0 {
        output
            .chunks_mut(per_chunk)
            .enumerate()
            .for_each(|(i, out)| f(i, out));
    }
}

#[cfg(target_arch = "wasm32")]
pub fn gemm_parallelism(_batch: usize) -> gemm::Parallelism {
    gemm::Parallelism::None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `col2im_add` is the adjoint of `im2col`: ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩.
    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        let g = Geometry {
            c_in: 2,
            h: 7,
            w: 6,
            kernel: 3,
            stride: 2,
            padding: 1,
        };
        let x: Vec<f32> = (0..2 * 7 * 6).map(|i| (i as f32 * 0.37).sin()).collect();
        let c: Vec<f32> = (0..g.taps() * g.out_h() * g.out_w())
            .map(|i| (i as f32 * 0.11).cos())
            .collect();
        let lhs: f32 = im2col(&x, &g).iter().zip(&c).map(|(a, b)| a * b).sum();
        let mut back = vec![0.0; x.len()];
        col2im_add(&c, &g, &mut back);
        let rhs: f32 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
    }
}
