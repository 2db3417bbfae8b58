//! What each training image of a batch should be scored as: its class, or with mixup a blend of
//! two images' classes, optionally smoothed towards the uniform distribution (label smoothing).
//! Cross-entropy is linear in the target, so one soft-target loss (`super::loss`) serves all.

use rand::Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

/// A batch's targets: one distribution over the classes per image.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    classes: usize,
    /// `[batch × classes]`, what the loss compares against.
    rows: Vec<f32>,
    /// The rows before smoothing: how much of each class an image holds, which weighs it.
    blends: Vec<f32>,
}

impl Targets {
    /// One-hot rows for `labels`.
    pub fn hard(labels: &[usize], classes: usize) -> Self {
        let mut rows = vec![0.0; labels.len() * classes];
        for (row, &label) in labels.iter().enumerate() {
            rows[row * classes + label] = 1.0;
        }
        Self {
            classes,
            blends: rows.clone(),
            rows,
        }
    }

    /// Row `i` is `share · onehot(labels[i]) + (1 − share) · onehot(labels[partner[i]])`.
    pub fn mixed(labels: &[usize], partner: &[usize], share: f32, classes: usize) -> Self {
        let own = Self::hard(labels, classes);
        let mut rows = own.rows.clone();
        for (row, &other) in partner.iter().enumerate() {
            rows[row * classes..(row + 1) * classes]
                .iter_mut()
                .zip(&own.rows[other * classes..(other + 1) * classes])
                .for_each(|(mine, theirs)| *mine = share * *mine + (1.0 - share) * theirs);
        }
        Self {
            classes,
            blends: rows.clone(),
            rows,
        }
    }

    /// Label smoothing: `(1 − ε) · row + ε / classes`.
    pub fn smoothed(mut self, epsilon: f32) -> Self {
        let uniform = epsilon / self.classes as f32;
        self.rows
            .iter_mut()
            .for_each(|v| *v = (1.0 - epsilon) * *v + uniform);
        self
    }

    pub fn rows(&self) -> &[f32] {
        &self.rows
    }

    /// The positive class's share per image (the binary case: class 1 of two).
    pub fn positive_share(&self) -> Vec<f32> {
        self.rows.chunks(self.classes).map(|row| row[1]).collect()
    }

    /// Each image's weight: its blend of the class weights (smoothing does not change it).
    pub fn sample_weights(&self, class_weights: &[f32]) -> Vec<f32> {
        self.blends
            .chunks(self.classes)
            .map(|row| row.iter().zip(class_weights).map(|(s, w)| s * w).sum())
            .collect()
    }
}

/// Mixup (Zhang et al. 2018): each batch is blended with itself in reverse order by one share
/// `λ ~ Beta(α, α)`, images and targets alike.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mixup {
    pub alpha: f32,
}

impl Mixup {
    /// Draws the batch's share (the larger of λ and 1 − λ, so an image stays mostly itself and
    /// the pairing is symmetric) and blends `pixels` (`batch` images of equal length) in place.
    /// Returns the share and the partner of each image.
    pub fn blend(&self, pixels: &mut [f32], batch: usize, rng: &mut impl Rng) -> (f32, Vec<usize>) {
        let beta = Beta::new(self.alpha, self.alpha).expect("alpha is checked positive");
        let drawn: f32 = beta.sample(rng);
        let share = drawn.max(1.0 - drawn);
        let partner: Vec<usize> = (0..batch).rev().collect();
        let per_image = pixels.len() / batch.max(1);
        let original = pixels.to_vec();
        for (image, &other) in partner.iter().enumerate() {
            let theirs = &original[other * per_image..(other + 1) * per_image];
            pixels[image * per_image..(image + 1) * per_image]
                .iter_mut()
                .zip(theirs)
                .for_each(|(mine, theirs)| *mine = share * *mine + (1.0 - share) * theirs);
        }
        (share, partner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn hard_targets_are_one_hot_and_weigh_by_their_class() {
        let t = Targets::hard(&[0, 1, 1], 2);
        assert_eq!(t.rows(), &[1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
        assert_eq!(t.positive_share(), vec![0.0, 1.0, 1.0]);
        assert_eq!(t.sample_weights(&[3.0, 0.5]), vec![3.0, 0.5, 0.5]);
    }

    #[test]
    fn smoothing_moves_every_row_towards_uniform_but_keeps_the_weights() {
        let t = Targets::hard(&[0, 1], 2).smoothed(0.1);
        assert_eq!(t.positive_share(), vec![0.05, 0.95]);
        assert_eq!(t.sample_weights(&[3.0, 0.5]), vec![3.0, 0.5]);
    }

    #[test]
    fn mixup_blends_images_and_targets_by_the_same_share() {
        let mut pixels = vec![0.0, 0.0, 1.0, 1.0]; // two images of two pixels
        let mixup = Mixup { alpha: 0.4 };
        let (share, partner) = mixup.blend(&mut pixels, 2, &mut StdRng::seed_from_u64(7));
        assert!((0.5..=1.0).contains(&share), "{share}");
        assert_eq!(partner, vec![1, 0]);
        assert_eq!(pixels, vec![1.0 - share, 1.0 - share, share, share]);
        let t = Targets::mixed(&[0, 1], &partner, share, 2);
        let shares = t.positive_share();
        assert!((shares[0] - (1.0 - share)).abs() < 1e-6 && (shares[1] - share).abs() < 1e-6);
        let w = t.sample_weights(&[3.0, 1.0]);
        assert!((w[0] - (3.0 * share + (1.0 - share))).abs() < 1e-6, "{w:?}");
    }
}
