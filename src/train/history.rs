//! One row of `metrics.csv` per epoch: written by the training loop, read back by the training
//! curves plot and the MLflow logger (so a resumed run redraws its whole history).

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_auc: f64,
    pub val_accuracy: f64,
    pub val_sensitivity: f64,
    pub val_specificity: f64,
    pub learning_rate: f64,
    pub images_per_second: f64,
}

pub const CSV_HEADER: &str = "epoch,train_loss,val_loss,val_auc,val_accuracy,val_sensitivity,val_specificity,learning_rate,images_per_second";

impl EpochRecord {
    pub fn csv_line(&self) -> String {
        format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.3e},{:.3}",
            self.epoch,
            self.train_loss,
            self.val_loss,
            self.val_auc,
            self.val_accuracy,
            self.val_sensitivity,
            self.val_specificity,
            self.learning_rate,
            self.images_per_second
        )
    }

    /// The metrics MLflow records per epoch (the epoch is the step).
    pub fn named_metrics(&self) -> [(&'static str, f64); 8] {
        [
            ("train_loss", self.train_loss),
            ("val_loss", self.val_loss),
            ("val_auc", self.val_auc),
            ("val_accuracy", self.val_accuracy),
            ("val_sensitivity", self.val_sensitivity),
            ("val_specificity", self.val_specificity),
            ("learning_rate", self.learning_rate),
            ("images_per_second", self.images_per_second),
        ]
    }

    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.trim().split(',').collect();
        let field = |i: usize| fields.get(i)?.parse::<f64>().ok();
        Some(Self {
            epoch: fields.first()?.parse().ok()?,
            train_loss: field(1)?,
            val_loss: field(2)?,
            val_auc: field(3)?,
            val_accuracy: field(4)?,
            val_sensitivity: field(5)?,
            val_specificity: field(6)?,
            learning_rate: field(7)?,
            images_per_second: field(8)?,
        })
    }
}

/// Reads `metrics.csv`; a malformed line is an error that names it.
pub fn read(path: &Path) -> anyhow::Result<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            EpochRecord::parse(l).ok_or_else(|| {
                anyhow::anyhow!("{} line {}: cannot read {l:?}", path.display(), i + 1)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_line_reads_back() {
        let record = EpochRecord {
            epoch: 3,
            train_loss: 0.25,
            val_loss: 0.5,
            val_auc: 0.9,
            val_accuracy: 0.8,
            val_sensitivity: 0.7,
            val_specificity: 0.6,
            learning_rate: 1e-3,
            images_per_second: 4.5,
        };
        let dir = std::env::temp_dir().join(format!("pneumoscope-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.csv");
        std::fs::write(&path, format!("{CSV_HEADER}\n{}\n", record.csv_line())).unwrap();
        assert_eq!(read(&path).unwrap(), vec![record]);
        std::fs::write(&path, format!("{CSV_HEADER}\n3,oops\n")).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("line 2"));
    }
}
