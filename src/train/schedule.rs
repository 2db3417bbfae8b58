//! The training policy as small named rules: which epoch is the best so far (and when to stop
//! looking: early stopping on the validation ROC AUC), and the learning rate: lowered after each
//! validation (ReduceLROnPlateau on the validation loss) or set per step by a cosine decay over
//! the whole run. Their counters are part of the checkpoint, so a resumed run decides exactly as
//! an uninterrupted one.

use serde::{Deserialize, Serialize};

/// The best epoch so far by validation ROC AUC (its weights are `best.safetensors`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BestSoFar {
    pub best_auc: f64,
    /// 1-based; None before the first validation.
    pub best_epoch: Option<usize>,
    pub epochs_without_improvement: usize,
}

/// Early stopping: the run ends after `patience` epochs without a higher validation ROC AUC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarlyStopping {
    pub patience: usize,
}

impl EarlyStopping {
    /// Records epoch `epoch`'s AUC; true when it is the best so far (save its weights).
    pub fn observe(&self, best: &mut BestSoFar, epoch: usize, auc: f64) -> bool {
        if auc > best.best_auc {
            best.best_auc = auc;
            best.best_epoch = Some(epoch);
            best.epochs_without_improvement = 0;
            true
        } else {
            best.epochs_without_improvement += 1;
            false
        }
    }

    pub fn should_stop(&self, best: &BestSoFar) -> bool {
        best.epochs_without_improvement >= self.patience
    }
}

/// The plateau rule's memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    /// None until the first validation (JSON has no infinity).
    pub best_val_loss: Option<f64>,
    pub plateau_wait: usize,
}

/// ReduceLROnPlateau: after `patience` epochs without a validation loss lower than the best by
/// more than 1e-4, the learning rate is multiplied by `factor`, never below `min_learning_rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plateau {
    pub patience: usize,
    pub factor: f64,
    pub min_learning_rate: f64,
}

impl Plateau {
    /// The learning rate for the next epoch, given this epoch's validation loss.
    pub fn next_learning_rate(&self, state: &mut PlateauState, val_loss: f64, rate: f64) -> f64 {
        if state
            .best_val_loss
            .is_none_or(|best| val_loss < best - 1e-4)
        {
            state.best_val_loss = Some(val_loss);
            state.plateau_wait = 0;
            return rate;
        }
        state.plateau_wait += 1;
        if state.plateau_wait < self.patience {
            return rate;
        }
        state.plateau_wait = 0;
        (rate * self.factor).max(self.min_learning_rate)
    }
}

/// How the learning rate moves during a run (`train --schedule`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LearningRateSchedule {
    /// ReduceLROnPlateau on the validation loss ([`Plateau`]).
    #[default]
    Plateau,
    /// Cosine decay from the starting rate to the floor over all steps of the run ([`Cosine`]):
    /// a fixed budget with no decision taken on a (saturated) validation loss.
    Cosine,
}

/// Cosine decay, per optimizer step: `floor + (start − floor) · (1 + cos(π · step / steps)) / 2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cosine {
    pub start: f64,
    pub floor: f64,
    /// Steps in the whole run (epochs × batches per epoch).
    pub steps: usize,
}

impl Cosine {
    pub fn rate_at(&self, step: usize) -> f64 {
        let progress = (step as f64 / self.steps.max(1) as f64).min(1.0);
        self.floor
            + (self.start - self.floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_counts_epochs_without_a_better_auc() {
        let rule = EarlyStopping { patience: 2 };
        let mut best = BestSoFar::default();
        assert!(rule.observe(&mut best, 1, 0.90));
        assert!(!rule.observe(&mut best, 2, 0.90), "equal is no gain");
        assert!(!rule.should_stop(&best));
        assert!(rule.observe(&mut best, 3, 0.95));
        assert!(!rule.observe(&mut best, 4, 0.94));
        assert!(!rule.observe(&mut best, 5, 0.93));
        assert!(rule.should_stop(&best));
        assert_eq!((best.best_auc, best.best_epoch), (0.95, Some(3)));
    }

    #[test]
    fn plateau_lowers_the_rate_after_patience_epochs_down_to_the_floor() {
        let rule = Plateau {
            patience: 2,
            factor: 0.5,
            min_learning_rate: 0.3,
        };
        let mut state = PlateauState::default();
        assert_eq!(rule.next_learning_rate(&mut state, 1.0, 1.0), 1.0);
        assert_eq!(
            rule.next_learning_rate(&mut state, 0.99995, 1.0),
            1.0,
            "within 1e-4: wait 1"
        );
        assert_eq!(
            rule.next_learning_rate(&mut state, 1.0, 1.0),
            0.5,
            "wait 2: lowered"
        );
        assert_eq!(
            rule.next_learning_rate(&mut state, 0.5, 0.5),
            0.5,
            "better: reset"
        );
        assert_eq!(rule.next_learning_rate(&mut state, 0.6, 0.5), 0.5);
        assert_eq!(
            rule.next_learning_rate(&mut state, 0.6, 0.5),
            0.3,
            "floored"
        );
    }

    #[test]
    fn cosine_goes_from_the_start_to_the_floor_through_the_midpoint() {
        let rule = Cosine {
            start: 1e-3,
            floor: 1e-5,
            steps: 100,
        };
        assert_eq!(rule.rate_at(0), 1e-3);
        assert!((rule.rate_at(50) - (1e-3 + 1e-5) / 2.0).abs() < 1e-12);
        assert!((rule.rate_at(100) - 1e-5).abs() < 1e-12);
        assert!(
            (rule.rate_at(150) - 1e-5).abs() < 1e-12,
            "past the end: the floor"
        );
        assert!(rule.rate_at(30) > rule.rate_at(31), "decreasing");
    }
}
