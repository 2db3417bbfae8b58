//! The training policy after each validation, as two small named rules: which epoch is the best
//! so far (and when to stop looking: early stopping on the validation ROC AUC), and when to
//! lower the learning rate (ReduceLROnPlateau on the validation loss). Their counters are part
//! of the checkpoint, so a resumed run decides exactly as an uninterrupted one.

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
}
