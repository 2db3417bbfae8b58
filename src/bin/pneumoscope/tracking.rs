//! `--mlflow URI` for `train` and `export`: one MLflow run per run folder, remembered in its
//! `mlflow.json`, so a resumed training and the export of its best weights add to the same run.

use pneumoscope::mlflow::{MlflowRun, URI_ENV};
use pneumoscope::train::checkpoint::RunFiles;
use std::path::Path;

#[derive(clap::Args, Clone)]
pub struct TrackingArgs {
    /// MLflow tracking server (e.g. http://127.0.0.1:5000) to log params, metrics, plots and
    /// weights to. Without it the run folder is the record.
    #[arg(long, env = URI_ENV)]
    pub mlflow: Option<String>,
    /// MLflow experiment name (created if missing).
    #[arg(long, default_value = "pneumoscope")]
    pub experiment: String,
}

/// The run folder's MLflow run on `uri`: the one recorded in `folder/mlflow.json`, or a new one.
pub fn open(
    args: &TrackingArgs,
    folder: &Path,
    run_name: &str,
) -> anyhow::Result<Option<MlflowRun>> {
    let Some(uri) = &args.mlflow else {
        return Ok(None);
    };
    let saved = RunFiles {
        dir: folder.to_path_buf(),
    }
    .mlflow();
    if let Ok(run) = MlflowRun::load(&saved)
        && run.tracking_uri == uri.trim_end_matches('/')
    {
        eprintln!("MLflow: continuing run {} on {uri}", run.run_id);
        return MlflowRun::reopen(run).map(Some);
    }
    let run = MlflowRun::start(
        uri,
        &args.experiment,
        run_name,
        &[("mlflow.source.name", "pneumoscope".into())],
    )?;
    std::fs::create_dir_all(folder)?;
    run.save(&saved)?;
    eprintln!(
        "MLflow: run {} in experiment {:?} on {uri}",
        run.run.run_id, args.experiment
    );
    Ok(Some(run))
}

/// Tracking never stops the work it records: a failure is a warning.
pub fn warn_on_error(what: &str, result: anyhow::Result<()>) {
    if let Err(e) = result {
        eprintln!("warning: MLflow {what} failed: {e:#}");
    }
}
