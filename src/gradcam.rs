//! Grad-CAM (Selvaraju et al. 2017) on the last feature map, in closed form.
//!
//! The head is ReLU → global average pool → linear (or, for imported Keras heads, dense layers
//! with ReLU before it), so the gradient of class `c`'s logit with respect to the feature map
//! `A` (C×H×W) is `g_k / HW · 1[A_kij > 0]`, with `g` the logit's gradient with respect to the
//! pooled features (`W[k,c]` for a linear head; [`crate::model::DenseNet::logit_gradient`]).
//! Its spatial mean gives the channel weights `α_k = g_k · #(A_k > 0) / (HW)²` without a
//! backward pass.
//!
//! The map is `ReLU(Σ_k α_k · ReLU(A_k))`: torchvision's DenseNet applies its final ReLU in
//! place, so the activations pytorch-grad-cam records for `features.norm5` are already
//! rectified. With that, the result equals pytorch-grad-cam's
//! `GradCAM(target_layers=[model.features[-1]])`, including its two min-max normalisations
//! around the bilinear upsampling (checked against the golden fixture to 1e-4).

use burn::prelude::*;

/// A class activation map in [0, 1], row-major.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cam {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

/// Raw (un-normalised, ReLU'd) maps `[batch, H, W]`. `logit_gradient` is, per image, the
/// explained logit's gradient with respect to the pooled features, `[batch, channels]`.
pub fn raw_maps(features: Tensor<4>, logit_gradient: Tensor<2>) -> Tensor<3> {
    let [batch, channels, h, w] = features.dims();
    let hw = (h * w) as f32;
    let weight = logit_gradient.reshape([batch, channels, 1, 1]);
    let active = features
        .clone()
        .greater_elem(0.0)
        .float()
        .sum_dim(3)
        .sum_dim(2);
    let alpha = active.mul(weight).div_scalar(hw * hw);
    let rectified = burn::tensor::activation::relu(features);
    let cam = rectified.mul(alpha).sum_dim(1).reshape([batch, h, w]);
    burn::tensor::activation::relu(cam)
}

/// Min-max normalisation with pytorch-grad-cam's epsilon.
fn min_max(values: &mut [f32]) {
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    for v in values.iter_mut() {
        *v -= min;
    }
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in values.iter_mut() {
        *v /= 1e-7 + max;
    }
}

/// Bilinear resize with half-pixel centres (OpenCV's INTER_LINEAR when enlarging).
pub fn resize_bilinear(
    src: &[f32],
    (sw, sh): (usize, usize),
    (dw, dh): (usize, usize),
) -> Vec<f32> {
    let coord = |d: usize, scale: f32, limit: usize| {
        let x = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
        let x0 = (x.floor() as usize).min(limit - 1);
        let x1 = (x0 + 1).min(limit - 1);
        (x0, x1, x - x0 as f32)
    };
    let (sx, sy) = (sw as f32 / dw as f32, sh as f32 / dh as f32);
    let mut out = Vec::with_capacity(dw * dh);
    for y in 0..dh {
        let (y0, y1, fy) = coord(y, sy, sh);
        for x in 0..dw {
            let (x0, x1, fx) = coord(x, sx, sw);
            let top = src[y0 * sw + x0] * (1.0 - fx) + src[y0 * sw + x1] * fx;
            let bottom = src[y1 * sw + x0] * (1.0 - fx) + src[y1 * sw + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// A raw `h`×`w` map → the displayed map at `size`×`size`, as pytorch-grad-cam scales it.
pub fn finish(raw: &[f32], (w, h): (usize, usize), size: usize) -> Cam {
    let mut small = raw.to_vec();
    min_max(&mut small);
    let mut values = resize_bilinear(&small, (w, h), (size, size));
    min_max(&mut values);
    Cam {
        width: size,
        height: size,
        values,
    }
}

/// Jet colour map (blue = ignored → red = most important), as OpenCV's COLORMAP_JET.
pub fn jet(v: f32) -> [u8; 3] {
    let v = v.clamp(0.0, 1.0);
    let channel =
        |offset: f32| ((1.5 - (4.0 * v - offset).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
    [channel(3.0), channel(2.0), channel(1.0)]
}

/// Blends the coloured map over a grayscale or colour image of the same size.
pub fn overlay(base: &image::RgbImage, cam: &Cam, opacity: f32) -> image::RgbImage {
    let cam_img = image::RgbImage::from_fn(cam.width as u32, cam.height as u32, |x, y| {
        image::Rgb(jet(cam.values[y as usize * cam.width + x as usize]))
    });
    let cam_img = if cam_img.dimensions() == base.dimensions() {
        cam_img
    } else {
        image::imageops::resize(
            &cam_img,
            base.width(),
            base.height(),
            image::imageops::FilterType::Triangle,
        )
    };
    image::RgbImage::from_fn(base.width(), base.height(), |x, y| {
        let (b, c) = (base.get_pixel(x, y), cam_img.get_pixel(x, y));
        image::Rgb(std::array::from_fn(|i| {
            (b[i] as f32 * (1.0 - opacity) + c[i] as f32 * opacity).round() as u8
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_keeps_constants_and_corners() {
        let out = resize_bilinear(&[2.0; 4], (2, 2), (5, 5));
        assert!(out.iter().all(|v| (*v - 2.0).abs() < 1e-6));
        let out = resize_bilinear(&[0.0, 1.0, 2.0, 3.0], (2, 2), (4, 4));
        assert_eq!(out[0], 0.0);
        assert_eq!(out[15], 3.0);
    }

    #[test]
    fn finished_map_spans_zero_to_one() {
        let cam = finish(&[0.0, 1.0, 3.0, 0.5], (2, 2), 8);
        let max = cam.values.iter().copied().fold(0.0, f32::max);
        let min = cam.values.iter().copied().fold(1.0, f32::min);
        assert!(min.abs() < 1e-6 && (max - 1.0).abs() < 1e-5);
    }

    #[test]
    fn jet_runs_blue_to_red() {
        assert_eq!(jet(0.0), [0, 0, 128]);
        assert_eq!(jet(1.0), [128, 0, 0]);
        assert_eq!(jet(0.5), [128, 255, 128]);
    }
}
