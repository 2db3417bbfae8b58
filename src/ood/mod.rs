//! Out-of-distribution refusal: does an input look like the chest X-rays the model was trained
//! on? A classifier that scores a cat photo "78 % pneumonia" is dangerous, so the pipeline checks
//! this before it shows any result.
//!
//! The features come from the forward pass the classifier runs anyway (no extra pass): the
//! global-average-pooled DenseNet features (`ReLU(norm5)` averaged over space, 1024 values for
//! DenseNet121) and, since v2 statistics, each channel's mean and standard deviation after the
//! first transition (256 values): low-level appearance (grey levels, contrast, texture) that a
//! model trained with wide intensity augmentation no longer keeps in its pooled features. Each
//! group's distribution over the training X-rays is modelled by probabilistic PCA (Tipping &
//! Bishop 1999): mean `μ`, the top `k` principal directions `v_i` with variances `λ_i`, and one
//! variance `σ²` for the `d − k` remaining directions (their mean). A group's distance is the
//! Mahalanobis distance under that covariance,
//!
//! `D(x)² = Σ_i (v_i·(x − μ))² / λ_i + ‖r‖² / σ²`, with `r` the part of `x − μ` outside the `k`
//! directions,
//!
//! the groups are taken as independent (a block-diagonal covariance: their squared distances
//! add, [`OodProfile`]; `fit` scales each group's covariance so that its 99th percentile over
//! the validation X-rays is distance 1, so both weigh equally), and an input is refused when the distance exceeds the model card's
//! threshold (chosen on validation X-rays, see `fit`), or when it is uniform (no detail at all:
//! [`is_uniform`]; such images can land close to the X-rays in feature space). Refused inputs
//! are retried inverted and rotated ([`Fix`]): a negative or a sideways X-ray that passes once
//! fixed gets a hint rather than only a refusal.

pub mod ppca;

use crate::tensor_bytes::{
    ContainerTensor, HashMismatch, check_sha256, container_metadata, f32s, format_of,
    serialise_container,
};
use image::DynamicImage;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `format` metadata of a statistics file with one feature group (the pooled features).
pub const FORMAT: &str = "pneumoscope-ood-v1";
/// `format` metadata of a statistics file with several groups (tensors prefixed `{i}.`).
pub const FORMAT_GROUPS: &str = "pneumoscope-ood-v2";

/// The PPCA statistics of one feature group.
#[derive(Debug, Clone, PartialEq)]
pub struct OodStats {
    /// `d` feature means.
    pub mean: Vec<f32>,
    /// `k × d`, row-major: orthonormal principal directions, largest variance first.
    pub components: Vec<f32>,
    /// `k` variances along `components`.
    pub variances: Vec<f32>,
    /// The mean variance of the `d − k` directions left out (`σ²`).
    pub residual_variance: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum OodError {
    #[error(
        "the OOD statistics file is not a valid safetensors container (damaged or truncated?): {0}"
    )]
    Container(String),
    #[error("the OOD statistics file has format '{found}', expected '{expected}'")]
    Format { found: String, expected: String },
    #[error("the OOD statistics file is malformed: {0}")]
    Malformed(String),
    #[error(
        "the OOD statistics' sha256 is {found}, the model card expects {expected} (corrupted download?)"
    )]
    Hash { found: String, expected: String },
    #[error(
        "the OOD statistics describe {stats}-dimensional features but the model gives {model}; refit them with `pneumoscope fit-ood`"
    )]
    Dimension { stats: usize, model: usize },
}

impl OodStats {
    /// Feature dimension `d`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Number of principal directions `k`.
    pub fn rank(&self) -> usize {
        self.variances.len()
    }

    /// The PPCA Mahalanobis distance `D(x)` of one feature vector (computed in f64).
    pub fn distance(&self, features: &[f32]) -> f32 {
        self.squared_distance(features).sqrt() as f32
    }

    /// The same statistics with every squared distance divided by `scale` (the covariance
    /// multiplied by it): how `fit` makes groups weigh equally.
    pub fn scaled(mut self, scale: f64) -> Self {
        for v in self.variances.iter_mut() {
            *v = (*v as f64 * scale) as f32;
        }
        self.residual_variance = (self.residual_variance as f64 * scale) as f32;
        self
    }

    pub(crate) fn squared_distance(&self, features: &[f32]) -> f64 {
        let centred: Vec<f64> = features
            .iter()
            .zip(&self.mean)
            .map(|(x, m)| *x as f64 - *m as f64)
            .collect();
        let total: f64 = centred.iter().map(|c| c * c).sum();
        let (mut inside, mut explained) = (0.0, 0.0);
        for (row, variance) in self
            .components
            .chunks_exact(self.dim())
            .zip(&self.variances)
        {
            let z: f64 = row.iter().zip(&centred).map(|(v, c)| *v as f64 * c).sum();
            inside += z * z / *variance as f64;
            explained += z * z;
        }
        let residual = (total - explained).max(0.0);
        inside + residual / self.residual_variance as f64
    }

    /// This group's tensors, names prefixed by `prefix`.
    fn tensors(&self, prefix: &str) -> Vec<ContainerTensor> {
        let (d, k) = (self.dim(), self.rank());
        vec![
            ContainerTensor::f32(format!("{prefix}mean"), vec![d], &self.mean),
            ContainerTensor::f32(format!("{prefix}components"), vec![k, d], &self.components),
            ContainerTensor::f32(format!("{prefix}variances"), vec![k], &self.variances),
            ContainerTensor::f32(
                format!("{prefix}residual_variance"),
                vec![1],
                &[self.residual_variance],
            ),
        ]
    }

    /// Serialises to the one-group container (tensors `mean`, `components`, `variances`,
    /// `residual_variance`; metadata `format`).
    pub fn to_bytes(&self) -> Vec<u8> {
        serialise(&self.tensors(""), FORMAT, None)
    }

    /// Reads a one-group container, checking every shape and value.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OodError> {
        let (metadata, st) = open(bytes)?;
        let format = format_of(&metadata);
        if format != FORMAT {
            return Err(OodError::Format {
                found: format.into(),
                expected: FORMAT.into(),
            });
        }
        Self::read(&st, "")
    }

    /// Reads the group whose tensor names start with `prefix`, checking every shape and value.
    fn read(st: &SafeTensors, prefix: &str) -> Result<Self, OodError> {
        let tensor = |name: &str| -> Result<(Vec<usize>, Vec<f32>), OodError> {
            let name = format!("{prefix}{name}");
            let name = name.as_str();
            let view = st
                .tensor(name)
                .map_err(|_| OodError::Malformed(format!("no tensor '{name}'")))?;
            if view.dtype() != Dtype::F32 {
                return Err(OodError::Malformed(format!(
                    "'{name}' is {:?}, expected F32",
                    view.dtype()
                )));
            }
            Ok((view.shape().to_vec(), f32s(view.data())))
        };
        let (mean_shape, mean) = tensor("mean")?;
        let (components_shape, components) = tensor("components")?;
        let (variances_shape, variances) = tensor("variances")?;
        let (_, residual) = tensor("residual_variance")?;
        let (d, k) = (mean.len(), variances.len());
        if mean_shape != [d]
            || variances_shape != [k]
            || components_shape != [k, d]
            || residual.len() != 1
            || d == 0
            || k >= d
        {
            return Err(OodError::Malformed(format!(
                "shapes mean {mean_shape:?}, components {components_shape:?}, variances {variances_shape:?} do not fit together"
            )));
        }
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        if !finite(&mean)
            || !finite(&components)
            || !variances
                .iter()
                .chain(&residual)
                .all(|v| v.is_finite() && *v > 0.0)
        {
            return Err(OodError::Malformed(
                "non-finite values or non-positive variances".into(),
            ));
        }
        Ok(Self {
            mean,
            components,
            variances,
            residual_variance: residual[0],
        })
    }
}

/// A safetensors container of `tensors` with the `format` (and optional `parts`) metadata.
fn serialise(tensors: &[ContainerTensor], format: &str, parts: Option<usize>) -> Vec<u8> {
    let mut metadata = HashMap::from([("format".to_string(), format.to_string())]);
    if let Some(parts) = parts {
        metadata.insert("parts".into(), parts.to_string());
    }
    serialise_container(tensors, metadata)
}

/// The container's metadata (empty when it has none) and its tensors.
fn open(bytes: &[u8]) -> Result<(HashMap<String, String>, SafeTensors<'_>), OodError> {
    let container = |e: safetensors::SafeTensorError| OodError::Container(e.to_string());
    let metadata = container_metadata(bytes).map_err(container)?;
    let tensors = SafeTensors::deserialize(bytes).map_err(container)?;
    Ok((metadata, tensors))
}

/// The fitted statistics (the `*.ood.safetensors` file next to the weights): one PPCA per
/// feature group, applied to consecutive slices of the embedding (pooled features first), taken
/// as independent so that squared distances add.
#[derive(Debug, Clone, PartialEq)]
pub struct OodProfile {
    pub parts: Vec<OodStats>,
}

/// Most groups a statistics file may declare (the model gives two).
const MAX_PARTS: usize = 8;

impl OodProfile {
    /// Embedding values the profile reads (from the start of the embedding).
    pub fn dim(&self) -> usize {
        self.parts.iter().map(OodStats::dim).sum()
    }

    /// The distance of an embedding (at least [`Self::dim`] values; a one-group v1 profile
    /// reads the pooled features alone): `√(Σ_groups D_g²)`.
    pub fn distance(&self, embedding: &[f32]) -> f32 {
        let mut start = 0;
        let mut sum = 0.0;
        for part in &self.parts {
            sum += part.squared_distance(&embedding[start..start + part.dim()]);
            start += part.dim();
        }
        sum.sqrt() as f32
    }

    /// v1 for one group (what v0.2.0 shipped), else v2.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self.parts.as_slice() {
            [single] => single.to_bytes(),
            parts => serialise(
                &parts
                    .iter()
                    .enumerate()
                    .flat_map(|(i, p)| p.tensors(&format!("{i}.")))
                    .collect::<Vec<_>>(),
                FORMAT_GROUPS,
                Some(parts.len()),
            ),
        }
    }

    /// Reads a v1 or v2 container, checking every shape and value.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OodError> {
        let (metadata, st) = open(bytes)?;
        let format = format_of(&metadata);
        match format {
            FORMAT => Ok(Self {
                parts: vec![OodStats::read(&st, "")?],
            }),
            FORMAT_GROUPS => {
                let parts: usize = metadata
                    .get("parts")
                    .and_then(|p| p.parse().ok())
                    .filter(|p| (1..=MAX_PARTS).contains(p))
                    .ok_or_else(|| {
                        OodError::Malformed(format!(
                            "no 'parts' count between 1 and {MAX_PARTS} in the metadata"
                        ))
                    })?;
                let parts = (0..parts)
                    .map(|i| OodStats::read(&st, &format!("{i}.")))
                    .collect::<Result<_, _>>()?;
                Ok(Self { parts })
            }
            _ => Err(OodError::Format {
                found: format.into(),
                expected: format!("{FORMAT} or {FORMAT_GROUPS}"),
            }),
        }
    }

    /// Checks the bytes against the card's sha256, then reads them.
    pub fn load(bytes: &[u8], expected_sha256: &str) -> Result<Self, OodError> {
        check_sha256(bytes, expected_sha256)
            .map_err(|HashMismatch { found, expected }| OodError::Hash { found, expected })?;
        Self::from_bytes(bytes)
    }
}

/// A transformation that may turn a refused input into an X-ray the model knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fix {
    /// Negative ↔ positive grey levels.
    Invert,
    /// Rotate 90° clockwise.
    Rotate90,
    Rotate180,
    /// Rotate 90° counter-clockwise.
    Rotate270,
}

impl Fix {
    /// The fixes tried on a refused input, in order of preference.
    pub const ALL: [Fix; 4] = [Fix::Invert, Fix::Rotate90, Fix::Rotate270, Fix::Rotate180];

    pub fn apply(self, image: &DynamicImage) -> DynamicImage {
        match self {
            Fix::Invert => {
                let mut out = image.clone();
                out.invert();
                out
            }
            Fix::Rotate90 => image.rotate90(),
            Fix::Rotate180 => image.rotate180(),
            Fix::Rotate270 => image.rotate270(),
        }
    }
}

/// The verdict on one input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OodCheck {
    /// The weights came without OOD statistics (an older model card): nothing was checked.
    Unavailable,
    /// Looks like the training X-rays: `distance ≤ threshold`.
    Passed { distance: f32, threshold: f32 },
    /// Does not look like a chest X-ray the model was trained on. `fix`: a transformation after
    /// which it would pass (e.g. the image looks inverted). `uniform`: refused because the image
    /// has no detail at all, whatever its distance.
    Refused {
        distance: f32,
        threshold: f32,
        fix: Option<Fix>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        uniform: bool,
    },
}

impl OodCheck {
    /// `unavailable`, `passed` or `refused`: the `status` field of the JSON.
    pub fn status(&self) -> &'static str {
        match self {
            OodCheck::Unavailable => "unavailable",
            OodCheck::Passed { .. } => "passed",
            OodCheck::Refused { .. } => "refused",
        }
    }

    pub fn refused(&self) -> bool {
        matches!(self, OodCheck::Refused { .. })
    }

    pub fn fix(&self) -> Option<Fix> {
        match self {
            OodCheck::Refused { fix, .. } => *fix,
            _ => None,
        }
    }

    /// `(distance, threshold)` when the check ran.
    pub fn distance(&self) -> Option<(f32, f32)> {
        match *self {
            OodCheck::Unavailable => None,
            OodCheck::Passed {
                distance,
                threshold,
            }
            | OodCheck::Refused {
                distance,
                threshold,
                ..
            } => Some((distance, threshold)),
        }
    }
}

/// Grey levels (0–1) varying by less than this (standard deviation) make a uniform image.
pub const UNIFORM_STD: f32 = 0.01;

/// Whether a model input (normalised CHW floats, `norm` as in the card) is (nearly) one flat
/// colour: no radiograph is. Every channel's standard deviation, back in 0–1 grey levels, is
/// below [`UNIFORM_STD`].
pub fn is_uniform(pixels: &[f32], norm: &crate::card::Normalisation) -> bool {
    let plane = pixels.len() / 3;
    pixels
        .chunks_exact(plane.max(1))
        .zip(norm.std)
        .all(|(channel, std)| {
            let n = channel.len().max(1) as f64;
            let mean = channel.iter().map(|v| *v as f64).sum::<f64>() / n;
            let variance = channel
                .iter()
                .map(|v| (*v as f64 - mean).powi(2))
                .sum::<f64>()
                / n;
            ((variance.sqrt() * std as f64) as f32) < UNIFORM_STD
        })
}

/// Plain-English wording shared by the CLI (the web app has its own translated texts).
pub const REFUSAL: &str = "This does not look like a chest X-ray the model was trained on";
pub const UNAVAILABLE: &str = "OOD check unavailable: this model card has no OOD statistics (fit them with `pneumoscope fit-ood`)";

impl Fix {
    /// What the refused input looks like, for the CLI.
    pub fn hint(self) -> &'static str {
        match self {
            Fix::Invert => "it looks inverted (a negative): try --invert",
            Fix::Rotate90 => "it looks rotated: try --rotate 90 (clockwise)",
            Fix::Rotate180 => "it looks upside down: try --rotate 180",
            Fix::Rotate270 => "it looks rotated: try --rotate 270 (counter-clockwise)",
        }
    }
}

/// Statistics and the card's threshold, as the pipeline uses them.
#[derive(Debug, Clone)]
pub struct OodModel {
    pub profile: OodProfile,
    pub threshold: f32,
}

impl OodModel {
    pub fn passes(&self, embedding: &[f32]) -> (f32, bool) {
        let distance = self.profile.distance(embedding);
        (distance, distance <= self.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_bytes::sha256_hex;

    fn stats() -> OodStats {
        OodStats {
            mean: vec![1.0, 2.0, 3.0],
            components: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            variances: vec![4.0, 1.0],
            residual_variance: 0.25,
        }
    }

    #[test]
    fn status_is_the_json_tag() {
        let fix = Some(Fix::Invert);
        for check in [
            OodCheck::Unavailable,
            OodCheck::Passed {
                distance: 1.0,
                threshold: 2.0,
            },
            OodCheck::Refused {
                distance: 3.0,
                threshold: 2.0,
                fix,
                uniform: false,
            },
        ] {
            assert_eq!(
                serde_json::to_value(check).unwrap()["status"],
                check.status()
            );
        }
    }

    #[test]
    fn distance_is_mahalanobis_under_the_ppca_covariance() {
        // Axis-aligned: D² = (2/2)² + (1/1)² + (0.5/0.5)² = 3.
        let d = stats().distance(&[3.0, 3.0, 3.5]);
        assert!((d - 3f32.sqrt()).abs() < 1e-6, "{d}");
        assert_eq!(stats().distance(&[1.0, 2.0, 3.0]), 0.0);
    }

    #[test]
    fn scaling_divides_the_squared_distance() {
        let x = [3.0, 3.0, 3.5];
        let d = stats().scaled(3.0).distance(&x);
        assert!((d - 1.0).abs() < 1e-6, "D² = 3 / 3: {d}");
    }

    #[test]
    fn file_round_trips_and_is_checked() {
        let s = stats();
        let bytes = s.to_bytes();
        assert_eq!(OodStats::from_bytes(&bytes).unwrap(), s);
        let one = OodProfile {
            parts: vec![s.clone()],
        };
        assert_eq!(
            one.to_bytes(),
            bytes,
            "one group: the v1 file, as v0.2.0 shipped"
        );
        assert_eq!(OodProfile::load(&bytes, &sha256_hex(&bytes)).unwrap(), one);
        let wrong = OodProfile::load(&bytes, &"0".repeat(64)).unwrap_err();
        assert!(matches!(wrong, OodError::Hash { .. }), "{wrong}");
        assert!(matches!(
            OodStats::from_bytes(&bytes[..bytes.len() - 7]),
            Err(OodError::Container(_))
        ));
        assert!(matches!(
            OodStats::from_bytes(b"nonsense"),
            Err(OodError::Container(_))
        ));
        // A weights file is not a statistics file.
        let other = serialise_container(
            &[ContainerTensor::f32("mean", vec![1], &[0.0])],
            HashMap::from([("format".to_string(), "pneumoscope-int8-v1".to_string())]),
        );
        assert!(matches!(
            OodStats::from_bytes(&other),
            Err(OodError::Format { .. })
        ));
        let mut bad = s.clone();
        bad.variances[1] = 0.0;
        assert!(matches!(
            OodStats::from_bytes(&bad.to_bytes()),
            Err(OodError::Malformed(_))
        ));
    }

    #[test]
    fn groups_add_their_squared_distances_and_round_trip_as_v2() {
        let second = OodStats {
            mean: vec![0.0, 0.0],
            components: vec![0.0, 1.0],
            variances: vec![4.0],
            residual_variance: 1.0,
        };
        let profile = OodProfile {
            parts: vec![stats(), second],
        };
        assert_eq!(profile.dim(), 5);
        // Group 1: D² = 3 (as above); group 2: (1/1)² + (2/2)² = 2.
        let d = profile.distance(&[3.0, 3.0, 3.5, 1.0, 2.0]);
        assert!((d - 5f32.sqrt()).abs() < 1e-6, "{d}");
        // A one-group profile reads the pooled features at the start of a longer embedding.
        let first = OodProfile {
            parts: vec![stats()],
        };
        assert!((first.distance(&[3.0, 3.0, 3.5, 1.0, 2.0]) - 3f32.sqrt()).abs() < 1e-6);
        let bytes = profile.to_bytes();
        assert_eq!(OodProfile::from_bytes(&bytes).unwrap(), profile);
        assert!(matches!(
            OodStats::from_bytes(&bytes),
            Err(OodError::Format { .. })
        ));
        assert!(matches!(
            OodProfile::from_bytes(&bytes[..bytes.len() - 3]),
            Err(OodError::Container(_))
        ));
    }

    #[test]
    fn fixes_invert_and_rotate() {
        let img = DynamicImage::ImageLuma8(image::GrayImage::from_fn(3, 2, |x, y| {
            image::Luma([(x * 10 + y * 100) as u8])
        }));
        let norm = crate::card::Normalisation::imagenet();
        assert!(!is_uniform(
            &crate::preprocess::pixels_chw(&img, 8, &norm),
            &norm
        ));
        let flat =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(5, 5, image::Rgb([200, 30, 90])));
        assert!(is_uniform(
            &crate::preprocess::pixels_chw(&flat, 8, &norm),
            &norm
        ));
        let inverted = Fix::Invert.apply(&img).to_luma8();
        assert_eq!(inverted.get_pixel(1, 1)[0], 255 - 110);
        assert_eq!(Fix::Rotate90.apply(&img).width(), 2);
        assert_eq!(
            Fix::Rotate180.apply(&img).to_luma8().get_pixel(0, 0)[0],
            120
        );
    }
}
