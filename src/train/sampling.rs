//! The order a training epoch visits its images in: a seeded shuffle of them all, or a
//! class-balanced draw (as PyTorch's `WeightedRandomSampler` with class weights): as many draws
//! as images, each class equally likely, images drawn with replacement within their class.

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Every image once per epoch, in a seeded random order.
    #[default]
    Shuffle,
    /// Classes drawn equally often (with replacement within a class).
    Balanced,
}

impl Sampling {
    /// Indices into `labels` for one epoch, from `seed` (the same seed, the same order).
    pub fn epoch_order(self, labels: &[usize], seed: u64) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(seed);
        match self {
            Sampling::Shuffle => {
                let mut order: Vec<usize> = (0..labels.len()).collect();
                order.shuffle(&mut rng);
                order
            }
            Sampling::Balanced => {
                let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
                let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
                for (index, &label) in labels.iter().enumerate() {
                    by_class[label].push(index);
                }
                by_class.retain(|images| !images.is_empty());
                (0..labels.len())
                    .map(|_| {
                        let class = &by_class[rng.random_range(0..by_class.len())];
                        *class.choose(&mut rng).expect("classes kept are not empty")
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_visits_every_image_once() {
        let labels = [0, 1, 1, 1, 0, 1];
        let mut order = Sampling::Shuffle.epoch_order(&labels, 3);
        assert_eq!(order, Sampling::Shuffle.epoch_order(&labels, 3));
        order.sort();
        assert_eq!(order, (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn balanced_draws_each_class_about_equally() {
        // 1 : 3, as NORMAL : PNEUMONIA in train.
        let labels: Vec<usize> = (0..4000).map(|i| usize::from(i % 4 != 0)).collect();
        let order = Sampling::Balanced.epoch_order(&labels, 11);
        assert_eq!(order.len(), labels.len());
        let normals = order.iter().filter(|&&i| labels[i] == 0).count();
        assert!(
            (1850..2150).contains(&normals),
            "{normals} of 4000 draws are class 0"
        );
        assert_eq!(order, Sampling::Balanced.epoch_order(&labels, 11));
        assert!(Sampling::Balanced.epoch_order(&[], 1).is_empty());
    }
}
