//! Native training: data folders, the patient-grouped split, augmentation, the loss, the
//! plateau and early-stopping rules, the checkpointed, resumable training loop, and evaluation
//! (metrics, report, plots).

pub mod augment;
pub mod backend;
pub mod calibrate;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod dataset;
pub mod ema;
pub mod evaluate;
pub mod export;
pub mod fit_ood;
pub mod history;
pub mod loss;
pub mod plots;
mod progress;
pub mod run;
pub mod sampling;
pub mod schedule;
pub mod scoring;
pub mod split;
pub mod targets;
