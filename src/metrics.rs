//! Binary classification metrics: confusion matrix, accuracy, sensitivity, specificity,
//! precision, F1, ROC curve and AUC, and the choice of an operating threshold.

use crate::card::TestMetrics;

/// Counts at one threshold; "positive" is the card's positive label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    pub r#fn: usize,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl Confusion {
    pub fn at(scores: &[f32], positives: &[bool], threshold: f32) -> Self {
        let mut c = Self::default();
        for (&s, &y) in scores.iter().zip(positives) {
            match (s >= threshold, y) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.r#fn += 1,
            }
        }
        c
    }
    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.r#fn
    }
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.total())
    }
    pub fn sensitivity(&self) -> f64 {
        ratio(self.tp, self.tp + self.r#fn)
    }
    pub fn specificity(&self) -> f64 {
        ratio(self.tn, self.tn + self.fp)
    }
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.sensitivity());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// ROC curve points (false-positive rate, true-positive rate, threshold), from (0,0) to (1,1).
pub fn roc_curve(scores: &[f32], positives: &[bool]) -> Vec<(f64, f64, f32)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let p = positives.iter().filter(|&&y| y).count();
    let n = positives.len() - p;
    let mut points = vec![(0.0, 0.0, f32::INFINITY)];
    let (mut tp, mut fp) = (0, 0);
    for (i, &idx) in order.iter().enumerate() {
        if positives[idx] {
            tp += 1
        } else {
            fp += 1
        }
        // Tied scores form one step of the curve.
        if i + 1 == order.len() || scores[order[i + 1]] != scores[idx] {
            points.push((ratio(fp, n), ratio(tp, p), scores[idx]));
        }
    }
    points
}

/// Area under the ROC curve (trapezoids, ties count one half, as scikit-learn's roc_auc_score).
pub fn roc_auc(scores: &[f32], positives: &[bool]) -> f64 {
    roc_curve(scores, positives)
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum()
}

/// The threshold maximising Youden's J (sensitivity + specificity − 1), chosen on validation.
pub fn youden_threshold(scores: &[f32], positives: &[bool]) -> f32 {
    roc_curve(scores, positives)
        .into_iter()
        .skip(1)
        .max_by(|a, b| (a.1 - a.0).total_cmp(&(b.1 - b.0)))
        .map(|(_, _, t)| t)
        .unwrap_or(0.5)
}

/// Everything the model card and reports record, at `threshold`.
pub fn summarise(scores: &[f32], positives: &[bool], threshold: f32) -> TestMetrics {
    let c = Confusion::at(scores, positives, threshold);
    TestMetrics {
        images: scores.len(),
        accuracy: c.accuracy(),
        sensitivity: c.sensitivity(),
        specificity: c.specificity(),
        precision: c.precision(),
        f1: c.f1(),
        roc_auc: roc_auc(scores, positives),
        // Rows true [negative, positive], columns predicted [negative, positive].
        confusion: vec![vec![c.tn, c.fp], vec![c.r#fn, c.tp]],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_counts_by_hand() {
        let scores = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1];
        let truth = [true, true, true, false, false, false];
        let c = Confusion::at(&scores, &truth, 0.5);
        assert_eq!(
            c,
            Confusion {
                tp: 2,
                fp: 1,
                tn: 2,
                r#fn: 1
            }
        );
        assert!((c.accuracy() - 4.0 / 6.0).abs() < 1e-12);
        assert!((c.sensitivity() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.specificity() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.f1() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn auc_matches_scikit_learn() {
        // sklearn.metrics.roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.75
        assert!(
            (roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]) - 0.75).abs() < 1e-12
        );
        // Ties count one half: roc_auc_score([0,1], [0.5,0.5]) == 0.5
        assert!((roc_auc(&[0.5, 0.5], &[false, true]) - 0.5).abs() < 1e-12);
        assert_eq!(roc_auc(&[0.1, 0.9], &[false, true]), 1.0);
    }

    #[test]
    fn youden_threshold_separates_separable_scores() {
        let t = youden_threshold(&[0.1, 0.2, 0.7, 0.8], &[false, false, true, true]);
        assert_eq!(t, 0.7);
        assert_eq!(
            summarise(&[0.1, 0.2, 0.7, 0.8], &[false, false, true, true], t).accuracy,
            1.0
        );
    }
}
