//! Decoded image → model input, exactly as the model card says. The browser, the CLI and
//! training all go through `pixels_chw`, so the numbers the model sees never depend on where
//! it runs.

use crate::card::Normalisation;
use burn::prelude::*;
use image::DynamicImage;
use image::imageops::FilterType;

/// `image` at `size`×`size` as the model sees it (aspect ratio not kept, as in training), in the
/// source bit depth. The CLI shrinks decoded files to this early, so that a batch never holds
/// full-size radiographs; the result is the same as resizing later.
pub fn resized(image: &DynamicImage, size: u32) -> DynamicImage {
    if image.width() == size && image.height() == size {
        image.clone()
    } else {
        image.resize_exact(size, size, FilterType::Triangle)
    }
}

/// Resizes to `size`×`size` ([`resized`]) and returns RGB in [0, 1]. Resizing happens in the
/// source bit depth first, so a large 16-bit radiograph never has to exist as a full-size float
/// buffer.
pub fn resized_rgb(image: &DynamicImage, size: u32) -> image::Rgb32FImage {
    if image.width() == size && image.height() == size {
        image.to_rgb32f()
    } else {
        resized(image, size).to_rgb32f()
    }
}

/// One grayscale plane in [0, 1] (row-major) → normalised CHW floats with three channels.
/// Training keeps images as single planes and comes through here after augmentation.
pub fn gray_to_chw(gray: &[f32], norm: &Normalisation) -> Vec<f32> {
    let mut out = Vec::with_capacity(gray.len() * 3);
    for c in 0..3 {
        out.extend(gray.iter().map(|v| (v - norm.mean[c]) / norm.std[c]));
    }
    out
}

/// RGB in [0, 1] → normalised CHW floats.
pub fn rgb_to_chw(rgb: &image::Rgb32FImage, norm: &Normalisation) -> Vec<f32> {
    let plane = (rgb.width() * rgb.height()) as usize;
    let mut out = vec![0.0; plane * 3];
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] - norm.mean[c]) / norm.std[c];
        }
    }
    out
}

/// Normalised CHW floats for one image.
pub fn pixels_chw(image: &DynamicImage, size: u32, norm: &Normalisation) -> Vec<f32> {
    rgb_to_chw(&resized_rgb(image, size), norm)
}

/// A batch of CHW images (each `3 * size * size` floats) → a `[batch, 3, size, size]` tensor.
pub fn batch_tensor(images: Vec<f32>, size: usize, device: &Device) -> Tensor<4> {
    let batch = images.len() / (3 * size * size);
    Tensor::from_data(TensorData::new(images, [batch, 3, size, size]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_and_rgb_paths_agree_for_gray_images() {
        let gray = image::GrayImage::from_fn(8, 8, |x, y| image::Luma([(x * 30 + y) as u8]));
        let norm = Normalisation::imagenet();
        let via_rgb = pixels_chw(&DynamicImage::ImageLuma8(gray.clone()), 8, &norm);
        let plane: Vec<f32> = gray.pixels().map(|p| p[0] as f32 / 255.0).collect();
        let via_gray = gray_to_chw(&plane, &norm);
        for (a, b) in via_rgb.iter().zip(&via_gray) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn sixteen_bit_and_any_aspect_resize_to_the_card_size() {
        let img = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(300, 120, |x, _| {
            image::Luma([(x * 200) as u16])
        });
        let px = pixels_chw(
            &DynamicImage::ImageLuma16(img),
            32,
            &Normalisation::imagenet(),
        );
        assert_eq!(px.len(), 3 * 32 * 32);
        // Left edge dark, right edge bright, channels normalised separately.
        let norm = Normalisation::imagenet();
        let first = px[0] * norm.std[0] + norm.mean[0];
        let last = px[32 * 32 - 1] * norm.std[0] + norm.mean[0];
        assert!(first < 0.05 && last > 0.85, "{first} {last}");
    }
}
