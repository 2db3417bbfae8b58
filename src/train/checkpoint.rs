//! A run's folder and its checkpoint: model, optimizer and [`TrainState`], written so that a
//! crash or a full disk never leaves a half-written file, and read back for an exact resume.

use super::config::TrainConfig;
use super::ema::Ema;
use super::schedule::{BestSoFar, PlateauState};
use crate::model::DenseNet;
use anyhow::Context;
use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the run is, saved with every checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainState {
    pub epoch: usize,
    /// Batches of `epoch` already done (non-zero after a mid-epoch checkpoint).
    pub batch: usize,
    pub learning_rate: f64,
    #[serde(flatten)]
    pub best: BestSoFar,
    #[serde(flatten)]
    pub plateau: PlateauState,
    pub images_seen: usize,
    pub train_seconds: f64,
    pub finished: bool,
    /// Sum and count of the running epoch's training loss (kept across a mid-epoch resume).
    pub epoch_loss_sum: f64,
    pub epoch_loss_count: usize,
}

pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn split(&self) -> PathBuf {
        self.dir.join("split.json")
    }
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.csv")
    }
    pub fn curves(&self) -> PathBuf {
        self.dir.join("training_curves.png")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }
    pub fn best_weights(&self) -> PathBuf {
        self.dir.join("best.safetensors")
    }
    pub fn best_card(&self) -> PathBuf {
        self.dir.join("best-card.json")
    }
    /// One JSON object per epoch: clean and stressed validation, normals by file-name family.
    pub fn validation_log(&self) -> PathBuf {
        self.dir.join("validation.jsonl")
    }
    pub fn mlflow(&self) -> PathBuf {
        self.dir.join("mlflow.json")
    }

    /// The configuration a run was started with (what `--resume` continues), pointing at this
    /// folder even if the run was moved since.
    pub fn saved_config(&self) -> anyhow::Result<TrainConfig> {
        let text = std::fs::read_to_string(self.config()).with_context(|| {
            format!(
                "resuming: no config.json in {} (is it a run folder?)",
                self.dir.display()
            )
        })?;
        let saved: TrainConfig = serde_json::from_str(&text).with_context(|| {
            format!(
                "resuming: {} is not a run configuration",
                self.config().display()
            )
        })?;
        Ok(TrainConfig {
            out: self.dir.clone(),
            ..saved
        })
    }

    /// A new run must not overwrite an earlier one.
    pub fn ensure_fresh(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.checkpoint().exists(),
            "{} already holds a run; use --resume or another --out",
            self.dir.display()
        );
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash or a full disk
/// never leaves a half-written file under the real name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("partial");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// The weight average's file inside a checkpoint (runs with `--ema`).
const EMA_FILE: &str = "ema.bpk";

pub fn save_checkpoint(
    files: &RunFiles,
    model: &DenseNet,
    optim: &ModuleOptimizer,
    ema: Option<&Ema>,
    state: &TrainState,
) -> anyhow::Result<()> {
    let fresh = files.dir.join("checkpoint.partial");
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(&fresh)?;
    let mut store = BurnpackStore::from_file(fresh.join("model.bpk")).overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("saving model: {e}"))?;
    if let Some(ema) = ema {
        let mut store = BurnpackStore::from_file(fresh.join(EMA_FILE)).overwrite(true);
        ema.model
            .save_into(&mut store)
            .map_err(|e| anyhow::anyhow!("saving the weight average: {e}"))?;
    }
    optim
        .save(fresh.join("optimizer.bpk"))
        .map_err(|e| anyhow::anyhow!("saving optimizer: {e:?}"))?;
    write_atomic(
        &fresh.join("state.json"),
        serde_json::to_string_pretty(state)?.as_bytes(),
    )?;
    // Swap in: the previous checkpoint stays until the new one is complete.
    let current = files.checkpoint();
    let old = files.dir.join("checkpoint.old");
    let _ = std::fs::remove_dir_all(&old);
    if current.exists() {
        std::fs::rename(&current, &old)?;
    }
    std::fs::rename(&fresh, &current)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

pub fn load_checkpoint(
    files: &RunFiles,
    model: DenseNet,
    optim: ModuleOptimizer,
    ema: Option<&mut Ema>,
) -> anyhow::Result<(DenseNet, ModuleOptimizer, TrainState)> {
    let mut dir = files.checkpoint();
    if !dir.join("state.json").exists() {
        // Interrupted between the two renames of `save_checkpoint`.
        dir = files.dir.join("checkpoint.old");
    }
    let state: TrainState = serde_json::from_str(
        &std::fs::read_to_string(dir.join("state.json")).context("no checkpoint to resume from")?,
    )?;
    let mut model = model;
    let mut store = BurnpackStore::from_file(dir.join("model.bpk"));
    model
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("loading checkpoint model: {e}"))?;
    if let Some(ema) = ema {
        let path = dir.join(EMA_FILE);
        anyhow::ensure!(
            path.exists(),
            "the checkpoint has no weight average ({}) although the run keeps one",
            path.display()
        );
        let mut store = BurnpackStore::from_file(path);
        ema.model
            .load_from(&mut store)
            .map_err(|e| anyhow::anyhow!("loading the weight average: {e}"))?;
    }
    let optim = optim
        .load(dir.join("optimizer.bpk"))
        .map_err(|e| anyhow::anyhow!("loading optimizer state: {e:?}"))?;
    Ok((model, optim, state))
}
