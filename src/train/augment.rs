//! On-the-fly augmentation of grayscale planes. The geometric part is what the Keras notebooks
//! did (ImageDataGenerator: rotation ±15°, shifts ±10 %, zoom ±10 %, horizontal flip, nearest
//! fill), plus an optional random square crop; one inverse affine map per image, bilinear
//! sampling, which also rescales to the training resolution. Then the photometric part
//! (brightness, and optionally contrast and gamma) and, optionally, a random border.
//!
//! [`Augmentation::shift_robust`] is the recipe that holds up under the test set's shift (the
//! model issue's recipe C): wide intensity, contrast and gamma jitter, crops, and black or grey
//! borders pasted on both classes, so that a dark frame stops predicting "normal".

use rand::Rng;
use serde::{Deserialize, Serialize};

fn unit_range() -> (f32, f32) {
    (1.0, 1.0)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Augmentation {
    pub rotation_degrees: f32,
    pub shift: f32,
    pub zoom: f32,
    pub horizontal_flip: bool,
    pub brightness: (f32, f32),
    /// Grey levels spread about the image's mean by a factor drawn from this range.
    #[serde(default = "unit_range")]
    pub contrast: (f32, f32),
    /// `v ↦ v^γ`, γ drawn from this range.
    #[serde(default = "unit_range")]
    pub gamma: (f32, f32),
    /// Random square crop: its share of the image's area, drawn from this range (1 = none).
    #[serde(default = "unit_range")]
    pub crop_area: (f32, f32),
    #[serde(default)]
    pub border: Option<Border>,
}

/// A random frame: the image shrunk and pasted onto a black or mid-grey canvas.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Border {
    /// Share of images that get one.
    pub probability: f32,
    /// The shrunk image's side as a share of the canvas's.
    pub shrink: (f32, f32),
}

impl Default for Augmentation {
    fn default() -> Self {
        Self {
            rotation_degrees: 15.0,
            shift: 0.10,
            zoom: 0.10,
            horizontal_flip: true,
            brightness: (0.8, 1.2),
            contrast: unit_range(),
            gamma: unit_range(),
            crop_area: unit_range(),
            border: None,
        }
    }
}

/// Draws from `range` (its low end when it is empty).
fn draw(rng: &mut impl Rng, (lo, hi): (f32, f32)) -> f32 {
    if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

impl Augmentation {
    pub fn none() -> Self {
        Self {
            rotation_degrees: 0.0,
            shift: 0.0,
            zoom: 0.0,
            horizontal_flip: false,
            brightness: (1.0, 1.0),
            ..Self::default()
        }
    }

    /// The model issue's recipe C: the geometric defaults, brightness and contrast 0.7–1.3,
    /// gamma 0.7–1.5, crops of 50–100 % of the area, and borders (70–95 %, black or grey) on
    /// half the images of both classes.
    pub fn shift_robust() -> Self {
        Self {
            brightness: (0.7, 1.3),
            contrast: (0.7, 1.3),
            gamma: (0.7, 1.5),
            crop_area: (0.5, 1.0),
            border: Some(Border {
                probability: 0.5,
                shrink: (0.70, 0.95),
            }),
            ..Self::default()
        }
    }

    /// The stressed validation copy: each change beyond [`Self::shift_robust`]'s range (no
    /// rotation, shift or flip: those do not model the test set's shift), a border on every
    /// image.
    pub fn stress() -> Self {
        Self {
            brightness: (0.6, 1.4),
            contrast: (0.6, 1.4),
            gamma: (0.6, 1.7),
            crop_area: (0.4, 1.0),
            border: Some(Border {
                probability: 1.0,
                shrink: (0.6, 0.95),
            }),
            ..Self::none()
        }
    }

    /// Draws one transform and applies it: `src` is `side`×`side` u8, the result `out`×`out`
    /// floats in [0, 1]. Options left at their neutral value draw nothing, so the default
    /// recipe gives the same images as before they existed.
    pub fn apply(&self, src: &[u8], side: usize, out: usize, rng: &mut impl Rng) -> Vec<f32> {
        let symmetric = |rng: &mut dyn rand::RngCore, r: f32| {
            if r > 0.0 {
                rng.random_range(-r..=r)
            } else {
                0.0
            }
        };
        let angle = symmetric(rng, self.rotation_degrees).to_radians();
        let (tx, ty) = (
            symmetric(rng, self.shift) * side as f32,
            symmetric(rng, self.shift) * side as f32,
        );
        let mut zoom = 1.0 + symmetric(rng, self.zoom);
        let flip = self.horizontal_flip && rng.random_bool(0.5);
        let gain = draw(rng, self.brightness);
        let (mut cx, mut cy) = (0.0, 0.0);
        if self.crop_area != unit_range() {
            // A square crop of side `s` anywhere inside the image: zoom in by 1/s about a
            // centre moved by up to (1 − s)/2 of the side.
            let crop_side = draw(rng, self.crop_area).clamp(1e-3, 1.0).sqrt();
            let room = (1.0 - crop_side) / 2.0 * side as f32;
            cx = symmetric(rng, room);
            cy = symmetric(rng, room);
            zoom /= crop_side;
        }
        let mut plane = warp(
            src,
            side,
            out,
            Transform {
                angle,
                tx,
                ty,
                zoom,
                flip,
                gain,
                cx,
                cy,
            },
        );
        if self.contrast != unit_range() {
            let factor = draw(rng, self.contrast);
            let mean = plane.iter().sum::<f32>() / plane.len().max(1) as f32;
            plane
                .iter_mut()
                .for_each(|v| *v = (mean + (*v - mean) * factor).clamp(0.0, 1.0));
        }
        if self.gamma != unit_range() {
            let gamma = draw(rng, self.gamma);
            plane.iter_mut().for_each(|v| *v = v.powf(gamma));
        }
        if let Some(border) = self.border
            && rng.random_bool(border.probability.clamp(0.0, 1.0) as f64)
        {
            let shrink = draw(rng, border.shrink).clamp(0.05, 1.0);
            let fill = if rng.random_bool(0.5) { 0.0 } else { 0.5 };
            let inner = ((out as f32 * shrink).round() as usize).clamp(1, out);
            let (left, top) = (
                rng.random_range(0..=out - inner),
                rng.random_range(0..=out - inner),
            );
            plane = paste(&plane, out, inner, (left, top), fill);
        }
        plane
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Transform {
    pub angle: f32,
    pub tx: f32,
    pub ty: f32,
    pub zoom: f32,
    pub flip: bool,
    pub gain: f32,
    /// Where the output's centre lands in the source, from the source's centre (pixels; a
    /// crop's position).
    pub cx: f32,
    pub cy: f32,
}

/// Output pixel → source pixel through the inverse of (flip, rotate and zoom about the centre,
/// shift), then bilinear sampling with edge clamping (Keras' `fill_mode="nearest"`).
pub fn warp(src: &[u8], side: usize, out: usize, t: Transform) -> Vec<f32> {
    let scale = side as f32 / out as f32;
    let c = side as f32 / 2.0;
    let (sin, cos) = t.angle.sin_cos();
    let max = (side - 1) as f32;
    let pixel = |x: usize, y: usize| src[y * side + x] as f32 / 255.0;
    let mut result = Vec::with_capacity(out * out);
    for oy in 0..out {
        for ox in 0..out {
            // Centre of the output pixel in source coordinates, relative to the image centre.
            let mut x = (ox as f32 + 0.5) * scale - c - t.tx;
            let y = (oy as f32 + 0.5) * scale - c - t.ty;
            if t.flip {
                x = -x;
            }
            let sx = (cos * x + sin * y) / t.zoom + c + t.cx - 0.5;
            let sy = (-sin * x + cos * y) / t.zoom + c + t.cy - 0.5;
            let (sx, sy) = (sx.clamp(0.0, max), sy.clamp(0.0, max));
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(side - 1), (y0 + 1).min(side - 1));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            let top = pixel(x0, y0) * (1.0 - fx) + pixel(x1, y0) * fx;
            let bottom = pixel(x0, y1) * (1.0 - fx) + pixel(x1, y1) * fx;
            result.push(((top * (1.0 - fy) + bottom * fy) * t.gain).clamp(0.0, 1.0));
        }
    }
    result
}

/// `plane` (`side`×`side`) shrunk to `inner`×`inner` (box-averaged bilinear: each output pixel
/// samples the centre of its footprint) and pasted at `(left, top)` on a canvas of `fill`.
fn paste(
    plane: &[f32],
    side: usize,
    inner: usize,
    (left, top): (usize, usize),
    fill: f32,
) -> Vec<f32> {
    let mut canvas = vec![fill; side * side];
    let scale = side as f32 / inner as f32;
    let max = (side - 1) as f32;
    for y in 0..inner {
        let sy = ((y as f32 + 0.5) * scale - 0.5).clamp(0.0, max);
        let (y0, fy) = (sy.floor() as usize, sy.fract());
        let y1 = (y0 + 1).min(side - 1);
        for x in 0..inner {
            let sx = ((x as f32 + 0.5) * scale - 0.5).clamp(0.0, max);
            let (x0, fx) = (sx.floor() as usize, sx.fract());
            let x1 = (x0 + 1).min(side - 1);
            let at = |xx: usize, yy: usize| plane[yy * side + xx];
            let value = (at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx) * (1.0 - fy)
                + (at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx) * fy;
            canvas[(top + y) * side + left + x] = value;
        }
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn ramp(side: usize) -> Vec<u8> {
        (0..side * side)
            .map(|i| ((i % side) * 255 / (side - 1)) as u8)
            .collect()
    }

    #[test]
    fn identity_transform_reproduces_the_image() {
        let src = ramp(16);
        let id = Transform {
            angle: 0.0,
            tx: 0.0,
            ty: 0.0,
            zoom: 1.0,
            flip: false,
            gain: 1.0,
            cx: 0.0,
            cy: 0.0,
        };
        let out = warp(&src, 16, 16, id);
        for (a, b) in src.iter().zip(&out) {
            assert!((*a as f32 / 255.0 - b).abs() < 1e-6);
        }
        let flipped = warp(&src, 16, 16, Transform { flip: true, ..id });
        assert!((flipped[0] - 1.0).abs() < 1e-6 && flipped[15].abs() < 1e-6);
    }

    #[test]
    fn output_has_requested_size_and_stays_in_range() {
        let src = ramp(32);
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..20 {
            let out = Augmentation::default().apply(&src, 32, 20, &mut rng);
            assert_eq!(out.len(), 400);
            assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }

    #[test]
    fn deterministic_by_seed() {
        let src = ramp(32);
        let a = Augmentation::default().apply(&src, 32, 32, &mut StdRng::seed_from_u64(9));
        let b = Augmentation::default().apply(&src, 32, 32, &mut StdRng::seed_from_u64(9));
        let c = Augmentation::default().apply(&src, 32, 32, &mut StdRng::seed_from_u64(10));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn neutral_options_draw_nothing() {
        // The default recipe must give the images it gave before the new options existed: the
        // same draws in the same order, the same arithmetic.
        let src = ramp(32);
        let mut a = StdRng::seed_from_u64(5);
        let mut b = StdRng::seed_from_u64(5);
        let with_options = Augmentation::default().apply(&src, 32, 24, &mut a);
        let symmetric = |rng: &mut StdRng, r: f32| rng.random_range(-r..=r);
        let angle = symmetric(&mut b, 15.0).to_radians();
        let (tx, ty) = (symmetric(&mut b, 0.1) * 32.0, symmetric(&mut b, 0.1) * 32.0);
        let zoom = 1.0 + symmetric(&mut b, 0.1);
        let flip = b.random_bool(0.5);
        let gain = b.random_range(0.8..=1.2);
        let t = Transform {
            angle,
            tx,
            ty,
            zoom,
            flip,
            gain,
            cx: 0.0,
            cy: 0.0,
        };
        assert_eq!(with_options, warp(&src, 32, 24, t));
    }

    #[test]
    fn shift_robust_and_stress_stay_in_range_and_frame_the_image() {
        let src = vec![200u8; 64 * 64];
        let mut rng = StdRng::seed_from_u64(1);
        let mut framed = 0;
        for _ in 0..50 {
            for recipe in [Augmentation::shift_robust(), Augmentation::stress()] {
                let out = recipe.apply(&src, 64, 48, &mut rng);
                assert_eq!(out.len(), 48 * 48);
                assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
                // A uniform image stays uniform inside; a border shows as black or grey corners.
                if out[0] == 0.0
                    || out[0] == 0.5
                    || out[48 * 48 - 1] == 0.0
                    || out[48 * 48 - 1] == 0.5
                {
                    framed += 1;
                }
            }
        }
        assert!((25..100).contains(&framed), "{framed} of 100 framed");
        let stressed = Augmentation::stress().apply(&src, 64, 48, &mut rng);
        assert!(
            stressed.contains(&0.0) || stressed.contains(&0.5),
            "stress always frames"
        );
    }

    #[test]
    fn paste_shrinks_onto_the_fill() {
        let plane = vec![1.0f32; 8 * 8];
        let out = paste(&plane, 8, 4, (2, 3), 0.5);
        assert_eq!(out.iter().filter(|v| **v == 1.0).count(), 16);
        assert_eq!(out[3 * 8 + 2], 1.0);
        assert_eq!(out[0], 0.5);
    }

    #[test]
    fn old_configs_still_read() {
        let old = r#"{"rotation_degrees":15.0,"shift":0.1,"zoom":0.1,"horizontal_flip":true,"brightness":[0.8,1.2]}"#;
        let parsed: Augmentation = serde_json::from_str(old).unwrap();
        assert_eq!(parsed, Augmentation::default());
    }
}
