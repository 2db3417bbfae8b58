//! On-the-fly augmentation of grayscale planes, as the Keras notebooks did
//! (ImageDataGenerator: rotation ±15°, shifts ±10 %, zoom ±10 %, horizontal flip,
//! brightness 0.8–1.2, nearest fill). One inverse affine map per image, bilinear sampling;
//! the same sampler also rescales to the training resolution.

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Augmentation {
    pub rotation_degrees: f32,
    pub shift: f32,
    pub zoom: f32,
    pub horizontal_flip: bool,
    pub brightness: (f32, f32),
}

impl Default for Augmentation {
    fn default() -> Self {
        Self {
            rotation_degrees: 15.0,
            shift: 0.10,
            zoom: 0.10,
            horizontal_flip: true,
            brightness: (0.8, 1.2),
        }
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
        }
    }

    /// Draws one transform and applies it: `src` is `side`×`side` u8, the result `out`×`out`
    /// floats in [0, 1].
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
        let zoom = 1.0 + symmetric(rng, self.zoom);
        let flip = self.horizontal_flip && rng.random_bool(0.5);
        let (lo, hi) = self.brightness;
        let gain = if hi > lo {
            rng.random_range(lo..=hi)
        } else {
            lo
        };
        warp(
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
            },
        )
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
            let sx = (cos * x + sin * y) / t.zoom + c - 0.5;
            let sy = (-sin * x + cos * y) / t.zoom + c - 0.5;
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
}
