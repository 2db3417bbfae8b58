//! Calibration: the monotone map from the model's raw probability to the one the app and the CLI
//! show, so that the operating threshold is 0.5 and the bands keep their meaning.
//!
//! Platt scaling, `p = σ(slope · logit(raw) + intercept)`, fitted with class-balanced weights:
//! the shown probability is the one for a population where both classes are equally common
//! (the training folder is 74 % pneumonia, the test folder 62.5 %, a clinic something else), so
//! 0.5 is the point where the evidence favours neither class. It is fitted on the stressed
//! validation (`train::calibrate`), never on the saturated clean split or on test.

use serde::{Deserialize, Serialize};

/// Raw probabilities are clamped here before the logit (a float32 sigmoid saturates at 1).
const EPSILON: f64 = 1e-7;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// Only "platt" today.
    pub method: String,
    pub slope: f32,
    pub intercept: f32,
    /// The images it was fitted on, in words.
    pub fitted_on: String,
    /// Expected calibration error (10 equal-width bins, class-balanced) on those images, of the
    /// raw and of the calibrated probabilities.
    pub ece_before: f64,
    pub ece_after: f64,
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(EPSILON, 1.0 - EPSILON);
    (p / (1.0 - p)).ln()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Calibration {
    /// The shown probability of the positive class for a raw one.
    pub fn apply(&self, raw: f32) -> f32 {
        sigmoid(self.slope as f64 * logit(raw as f64) + self.intercept as f64) as f32
    }

    /// A two-class probability row (in label order) with the positive class calibrated and the
    /// other its complement; rows of more classes are returned unchanged (only binary models
    /// are calibrated).
    pub fn apply_to_row(&self, row: &[f32], positive: usize) -> Vec<f32> {
        if row.len() != 2 {
            return row.to_vec();
        }
        let p = self.apply(row[positive]);
        let mut out = vec![1.0 - p; 2];
        out[positive] = p;
        out
    }
}

/// Class-balanced weights: each class weighs as much as the other in total.
fn balanced_weights(truth: &[bool]) -> Vec<f64> {
    let positives = truth.iter().filter(|&&y| y).count().max(1) as f64;
    let negatives = (truth.len() as f64 - positives).max(1.0);
    let half = truth.len() as f64 / 2.0;
    truth
        .iter()
        .map(|&y| {
            if y {
                half / positives
            } else {
                half / negatives
            }
        })
        .collect()
}

/// The weighted log loss of `σ(slope · z + intercept)`, plus a tiny ridge pulling the slope
/// towards 1.
fn penalised_loss(
    z: &[f64],
    truth: &[bool],
    weights: &[f64],
    slope: f64,
    intercept: f64,
    ridge: f64,
) -> f64 {
    let data: f64 = z
        .iter()
        .zip(truth)
        .zip(weights)
        .map(|((&x, &y), &w)| {
            // log(1 + e^{-m}) with m the signed margin, computed without overflow.
            let margin = if y { 1.0 } else { -1.0 } * (slope * x + intercept);
            w * (if margin > 0.0 {
                (-margin).exp().ln_1p()
            } else {
                -margin + margin.exp().ln_1p()
            })
        })
        .sum();
    data + 0.5 * ridge * (slope - 1.0).powi(2)
}

/// Platt scaling with class-balanced weights: `(slope, intercept)` minimising the weighted log
/// loss of `σ(slope · logit(score) + intercept)`, by Newton's method with step halving (plain
/// Newton can overshoot from the identity map); a tiny ridge keeps it finite on perfectly
/// separated scores.
pub fn fit_platt(scores: &[f32], truth: &[bool]) -> (f32, f32) {
    let z: Vec<f64> = scores.iter().map(|&s| logit(s as f64)).collect();
    let weights = balanced_weights(truth);
    let ridge = 1e-6 * scores.len().max(1) as f64;
    let (mut slope, mut intercept) = (1.0f64, 0.0f64);
    let mut loss = penalised_loss(&z, truth, &weights, slope, intercept, ridge);
    for _ in 0..100 {
        let (mut g_s, mut g_i) = (ridge * (slope - 1.0), 0.0);
        let (mut h_ss, mut h_si, mut h_ii) = (ridge, 0.0, 1e-12);
        for ((&x, &y), &w) in z.iter().zip(truth).zip(&weights) {
            let p = sigmoid(slope * x + intercept);
            let residual = w * (p - f64::from(u8::from(y)));
            g_s += residual * x;
            g_i += residual;
            let curvature = w * p * (1.0 - p);
            h_ss += curvature * x * x;
            h_si += curvature * x;
            h_ii += curvature;
        }
        let det = h_ss * h_ii - h_si * h_si;
        if det.abs() < 1e-300 {
            break;
        }
        let step_s = (h_ii * g_s - h_si * g_i) / det;
        let step_i = (h_ss * g_i - h_si * g_s) / det;
        let mut scale = 1.0;
        let mut improved = false;
        while scale > 1e-6 {
            let (s, i) = (slope - scale * step_s, intercept - scale * step_i);
            let candidate = penalised_loss(&z, truth, &weights, s, i, ridge);
            if candidate <= loss {
                (slope, intercept, loss) = (s, i, candidate);
                improved = true;
                break;
            }
            scale /= 2.0;
        }
        if !improved || (scale * step_s).abs() < 1e-10 && (scale * step_i).abs() < 1e-10 {
            break;
        }
    }
    (slope as f32, intercept as f32)
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReliabilityBin {
    /// Bin bounds on the predicted probability.
    pub low: f32,
    pub high: f32,
    /// Weighted mean predicted probability and weighted share of positives in the bin.
    pub predicted: f64,
    pub observed: f64,
    /// Images in the bin (unweighted).
    pub count: usize,
    /// The bin's share of the total weight.
    pub weight: f64,
}

/// `bins` equal-width bins of the predicted probability, class-balanced (the population the
/// calibration is for); empty bins are left out.
pub fn reliability(scores: &[f32], truth: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let bins = bins.max(1);
    let weights = balanced_weights(truth);
    let total: f64 = weights.iter().sum();
    let mut sums = vec![(0.0f64, 0.0f64, 0.0f64, 0usize); bins];
    for ((&s, &y), &w) in scores.iter().zip(truth).zip(&weights) {
        let index = ((s.clamp(0.0, 1.0) * bins as f32) as usize).min(bins - 1);
        let bin = &mut sums[index];
        bin.0 += w * s as f64;
        bin.1 += w * f64::from(u8::from(y));
        bin.2 += w;
        bin.3 += 1;
    }
    sums.into_iter()
        .enumerate()
        .filter(|(_, bin)| bin.3 > 0)
        .map(|(i, (predicted, observed, weight, count))| ReliabilityBin {
            low: i as f32 / bins as f32,
            high: (i + 1) as f32 / bins as f32,
            predicted: predicted / weight,
            observed: observed / weight,
            count,
            weight: weight / total,
        })
        .collect()
}

/// Expected calibration error: the weight-averaged |predicted − observed| over 10 bins,
/// class-balanced.
pub fn expected_calibration_error(scores: &[f32], truth: &[bool]) -> f64 {
    reliability(scores, truth, 10)
        .iter()
        .map(|bin| bin.weight * (bin.predicted - bin.observed).abs())
        .sum()
}

/// Fits Platt scaling on `scores` (raw probabilities) and records the calibration errors.
pub fn fit(scores: &[f32], truth: &[bool], fitted_on: String) -> Calibration {
    let (slope, intercept) = fit_platt(scores, truth);
    let mut calibration = Calibration {
        method: "platt".into(),
        slope,
        intercept,
        fitted_on,
        ece_before: expected_calibration_error(scores, truth),
        ece_after: 0.0,
    };
    let calibrated: Vec<f32> = scores.iter().map(|&s| calibration.apply(s)).collect();
    calibration.ece_after = expected_calibration_error(&calibrated, truth);
    calibration
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores drawn from a known Platt model are fitted back to its parameters.
    #[test]
    fn platt_recovers_a_known_map() {
        // Centred on raw logit 1.5: σ(0.6 · (z − 1.5)).
        let (true_slope, true_intercept) = (0.6f64, -0.9f64);
        let mut scores = vec![];
        let mut truth = vec![];
        // A deterministic grid of raw logits symmetric about the model's 0.5 point, with
        // positives in the proportion the model says: the classes are balanced overall, so the
        // balanced weights change nothing.
        for i in 0..2000 {
            let z = 1.5 - 6.0 + 12.0 * (i as f64 + 0.5) / 2000.0;
            let p = sigmoid(true_slope * z + true_intercept);
            for k in 0..20 {
                scores.push(sigmoid(z) as f32);
                truth.push((k as f64 + 0.5) / 20.0 < p);
            }
        }
        let (slope, intercept) = fit_platt(&scores, &truth);
        assert!((slope as f64 - true_slope).abs() < 0.02, "slope {slope}");
        assert!(
            (intercept as f64 - true_intercept).abs() < 0.05,
            "intercept {intercept}"
        );
    }

    #[test]
    fn the_map_is_monotone_and_keeps_rows_summing_to_one() {
        let calibration = fit(
            &[0.1, 0.3, 0.7, 0.9, 0.95, 0.2],
            &[false, true, false, true, true, false],
            "test".into(),
        );
        assert!(calibration.slope > 0.0);
        let grid: Vec<f32> = (0..=100).map(|i| i as f32 / 100.0).collect();
        let mapped: Vec<f32> = grid.iter().map(|&p| calibration.apply(p)).collect();
        assert!(mapped.windows(2).all(|w| w[0] <= w[1]));
        let row = calibration.apply_to_row(&[0.25, 0.75], 1);
        assert!((row[0] + row[1] - 1.0).abs() < 1e-6);
        assert_eq!(row[1], calibration.apply(0.75));
        assert_eq!(
            calibration.apply_to_row(&[0.2, 0.3, 0.5], 1),
            vec![0.2, 0.3, 0.5]
        );
    }

    /// Perfectly separated scores stay finite (the ridge), and the fitted map still separates.
    #[test]
    fn separable_scores_give_a_finite_map() {
        let scores = [0.01, 0.02, 0.03, 0.97, 0.98, 0.99];
        let truth = [false, false, false, true, true, true];
        let (slope, intercept) = fit_platt(&scores, &truth);
        assert!(slope.is_finite() && intercept.is_finite() && slope > 0.0);
        let calibration = fit(&scores, &truth, "test".into());
        assert!(calibration.apply(0.01) < 0.5 && calibration.apply(0.99) > 0.5);
    }

    /// Balanced weights: a model shifted towards the majority class is moved back, so the
    /// calibrated 0.5 falls between the classes.
    #[test]
    fn balanced_fit_centres_the_threshold_between_the_classes() {
        // Negatives around raw 0.7, positives around raw 0.95, three positives per negative.
        let mut scores = vec![];
        let mut truth = vec![];
        for i in 0..100 {
            let jitter = (i as f32 / 100.0 - 0.5) * 0.1;
            scores.push(0.7 + jitter);
            truth.push(false);
            for _ in 0..3 {
                scores.push(0.95 + jitter * 0.4);
                truth.push(true);
            }
        }
        let calibration = fit(&scores, &truth, "test".into());
        assert!(calibration.apply(0.7) < 0.5, "{}", calibration.apply(0.7));
        assert!(calibration.apply(0.95) > 0.5, "{}", calibration.apply(0.95));
        assert!(calibration.ece_after <= calibration.ece_before + 1e-9);
    }

    #[test]
    fn reliability_bins_by_hand() {
        let scores = [0.05, 0.15, 0.95, 0.85];
        let truth = [false, false, true, true];
        let bins = reliability(&scores, &truth, 10);
        assert_eq!(bins.len(), 4);
        assert_eq!(bins[0].count, 1);
        assert!((bins[0].predicted - 0.05).abs() < 1e-6 && bins[0].observed == 0.0);
        let ece = expected_calibration_error(&scores, &truth);
        // |0.05 − 0| + |0.15 − 0| + |0.85 − 1| + |0.95 − 1|, each a quarter of the weight.
        assert!((ece - 0.1).abs() < 1e-6, "{ece}");
    }
}
