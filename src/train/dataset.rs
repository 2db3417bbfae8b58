//! The images a run trains and validates on: decoded once into memory, split by patient (or
//! the official `val/` folder when it is large enough), the split recorded in `split.json`.

use super::augment::Augmentation;
use super::checkpoint::{RunFiles, write_atomic};
use super::config::TrainConfig;
use super::data::{PlaneSet, Sample, decode_all, scan};
use super::progress::progress_bar;
use super::split;
use crate::decode::FileError;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::path::{Path, PathBuf};

pub struct TrainingData {
    pub classes: Vec<String>,
    /// How validation was chosen, for split.json and the model card.
    pub split_note: String,
    pub train: PlaneSet,
    pub val: PlaneSet,
    /// The validation images once more, each changed by [`Augmentation::stress`] (the same
    /// change every epoch and every resume), when the run asks for it.
    pub stressed_val: Option<PlaneSet>,
}

/// The run's images decoded and split, before anything is recorded.
pub struct Split {
    pub classes: Vec<String>,
    /// How validation was chosen, in words.
    pub note: String,
    pub train: PlaneSet,
    pub val: PlaneSet,
}

/// Decodes the run's images at its input size and splits them: `DIR/val` when it has at least
/// `min_val_images`, else a patient-grouped, stratified share of train (seeded, so the same run
/// config always gives the same split).
pub fn decode_and_split(config: &TrainConfig) -> anyhow::Result<Split> {
    let folder = scan(&train_root(&config.data))?;
    let samples = limited(folder.samples.clone(), config.limit, config.seed);
    let bar = progress_bar(samples.len() as u64, "decode");
    let all = decode_all(&samples, config.image_size, || bar.inc(1));
    bar.finish_and_clear();
    report_skipped(&all.skipped, all.planes.len())?;

    let val_dir = config.data.join("val");
    let official_val = if val_dir.is_dir() {
        scan(&val_dir).ok()
    } else {
        None
    };
    let (train, val, note) = match official_val.filter(|v| v.samples.len() >= config.min_val_images)
    {
        Some(v) => {
            let val = decode_all(&v.samples, config.image_size, || {});
            report_skipped(&val.skipped, val.planes.len())?;
            (
                all,
                val,
                format!(
                    "official {} ({} images)",
                    val_dir.display(),
                    v.samples.len()
                ),
            )
        }
        None => {
            let val_idx = split::grouped_stratified(
                &all.labels,
                &all.patients,
                config.val_fraction,
                config.seed,
            );
            let (train, val) = partition(all, &val_idx);
            let note = format!(
                "{:.0}% of train, stratified by class, grouped by patient, seed {}",
                config.val_fraction * 100.0,
                config.seed
            );
            (train, val, note)
        }
    };
    Ok(Split {
        classes: folder.classes,
        note,
        train,
        val,
    })
}

/// Decodes, splits and records the run's images.
pub fn load(config: &TrainConfig, files: &RunFiles) -> anyhow::Result<TrainingData> {
    let Split {
        classes,
        note: split_note,
        train,
        val,
    } = decode_and_split(config)?;
    let record = serde_json::json!({
        "split": split_note,
        "classes": classes,
        "train_images": train.planes.len(),
        "validation_images": val.planes.len(),
        "validation_files": val.paths.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy()).collect::<Vec<_>>(),
    });
    write_atomic(
        &files.split(),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    eprintln!(
        "data: {} train / {} validation images ({split_note})",
        train.planes.len(),
        val.planes.len()
    );
    let stressed_val = config
        .stressed_validation
        .then(|| stressed_copy(&val, config.seed));
    Ok(TrainingData {
        classes,
        train,
        val,
        split_note,
        stressed_val,
    })
}

/// `set` with every plane changed by [`Augmentation::stress`], seeded by `seed` and the image's
/// index.
pub fn stressed_copy(set: &PlaneSet, seed: u64) -> PlaneSet {
    let stress = Augmentation::stress();
    let size = set.size;
    let mut stressed = PlaneSet::empty(size);
    for (index, plane) in set.planes.iter().enumerate() {
        // A stream of its own, apart from the training augmentation's (epoch, image) seeds.
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5757_5757_0000_0000 ^ index as u64);
        let changed = stress.apply(plane, size, size, &mut rng);
        stressed.push(
            changed.iter().map(|v| (v * 255.0).round() as u8).collect(),
            set.labels[index],
            set.paths[index].clone(),
            set.patients[index].clone(),
        );
    }
    stressed
}

/// The model outputs the classes under `data`'s `train/` call for: one (sigmoid) for two
/// classes, else one per class (softmax).
pub fn output_count(data: &Path) -> anyhow::Result<usize> {
    let classes = scan(&train_root(data))?.classes.len();
    Ok(if classes == 2 { 1 } else { classes })
}

/// At most `limit` samples (0 = all), as training takes them: classes kept in proportion by a
/// seeded shuffle, then the first `limit`, in path order.
pub fn limited(mut samples: Vec<Sample>, limit: usize, seed: u64) -> Vec<Sample> {
    if limit > 0 && samples.len() > limit {
        samples.shuffle(&mut StdRng::seed_from_u64(seed));
        samples.truncate(limit);
        samples.sort_by(|a, b| a.path.cmp(&b.path));
    }
    samples
}

fn report_skipped(skipped: &[(PathBuf, FileError)], usable: usize) -> anyhow::Result<()> {
    for (path, why) in skipped {
        eprintln!("warning: skipped {}: {why}", path.display());
    }
    if !skipped.is_empty() {
        eprintln!("warning: {} unreadable image(s) skipped", skipped.len());
    }
    anyhow::ensure!(usable > 0, "no usable images");
    Ok(())
}

fn partition(all: PlaneSet, val_idx: &[usize]) -> (PlaneSet, PlaneSet) {
    let (mut train, mut val) = (PlaneSet::empty(all.size), PlaneSet::empty(all.size));
    let in_val: std::collections::HashSet<usize> = val_idx.iter().copied().collect();
    let parts = all
        .planes
        .into_iter()
        .zip(all.labels)
        .zip(all.paths)
        .zip(all.patients);
    for (i, (((plane, label), path), patient)) in parts.enumerate() {
        let target = if in_val.contains(&i) {
            &mut val
        } else {
            &mut train
        };
        target.push(plane, label, path, patient);
    }
    (train, val)
}

/// The folder holding `train/{CLASS}/…`: `DIR/train` when it exists, else `DIR` itself.
pub fn train_root(data: &Path) -> PathBuf {
    let train = data.join("train");
    if train.is_dir() {
        train
    } else {
        data.to_path_buf()
    }
}
