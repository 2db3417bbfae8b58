//! A real MLflow tracking server (PyPI `mlflow`, installed by `scripts/setup.sh --test` into
//! `.tools/mlflow`) on 127.0.0.1: a tiny `pneumoscope train --mlflow` run must appear there with
//! its params, per-epoch metrics and artefacts, and `export --mlflow` must add the int8 weights
//! and the test metrics to the same run.
//!
//! Needs the `mlflow` executable: `$PNEUMOSCOPE_MLFLOW` if set (then it must work), else
//! `.tools/mlflow/bin/mlflow`. Without either the test prints `skipped: …` to stderr and passes,
//! except in CI (`CI=true`), where setup.sh has installed the virtual environment and its
//! absence fails the test.

mod common;

use common::data::{data_dir, sorted_files, test_data_dir};
use common::fixtures::read_json;
use pneumoscope::train::history;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The mlflow executable, or None (after saying why) when MLflow is not installed.
fn mlflow_executable() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PNEUMOSCOPE_MLFLOW").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/mlflow/bin/mlflow");
    if venv.exists() {
        return Some(venv);
    }
    common::skip::missing_prerequisite(
        &format!("MLflow is not installed ({} missing)", venv.display()),
        "run `bash scripts/setup.sh --test` (or set PNEUMOSCOPE_MLFLOW to an mlflow executable)",
    );
    None
}

/// Stops the server when the test ends, pass or fail. `mlflow server` starts uvicorn workers as
/// further processes, so the whole process group is stopped, not only the launcher.
struct Server {
    child: Child,
    uri: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    }
}

fn get(url: &str) -> Value {
    let mut response = ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

fn start_server(mlflow: &Path, dir: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(mlflow)
        .args([
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--workers",
            "1",
        ])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
        .arg("--artifacts-destination")
        .arg(dir.join("artifacts"))
        // Its own process group (see `Drop`), and no background job runner (not used here).
        .process_group(0)
        .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
        .spawn()
        .expect("starting mlflow server");
    let server = Server {
        child,
        uri: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    while ureq::get(&format!("{}/health", server.uri)).call().is_err() {
        assert!(
            Instant::now() < deadline,
            "mlflow server did not start: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    server
}

fn pneumoscope(args: &[&str], uri: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_pneumoscope"))
        .args(args)
        .env("MLFLOW_TRACKING_URI", uri)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pneumoscope {args:?} failed:\n{stderr}"
    );
    assert!(
        !stderr.contains("warning: MLflow"),
        "MLflow logging failed:\n{stderr}"
    );
}

fn artifacts(uri: &str, run_id: &str, path: &str) -> Vec<String> {
    let listing = get(&format!(
        "{uri}/api/2.0/mlflow/artifacts/list?run_id={run_id}&path={path}"
    ));
    listing["files"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

/// A small labelled test folder: the first `n` images of each class of the official test split.
fn small_test_folder(dir: &Path, n: usize) -> PathBuf {
    let root = dir.join("test");
    for class in ["NORMAL", "PNEUMONIA"] {
        let to = root.join(class);
        std::fs::create_dir_all(&to).unwrap();
        let files = sorted_files(&test_data_dir().join(class));
        for f in files.into_iter().take(n) {
            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
        }
    }
    root
}

#[test]
fn training_and_export_are_tracked_on_a_real_mlflow_server() {
    let Some(mlflow) = mlflow_executable() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("pneumoscope-mlflow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let server = start_server(&mlflow, &dir);
    let uri = server.uri.clone();
    let run_dir = dir.join("tiny-run");
    let run = run_dir.to_str().unwrap();
    let data = data_dir();

    pneumoscope(
        &[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            run,
            "--tiny",
            "--image-size",
            "32",
            "--epochs",
            "2",
            "--limit",
            "48",
            "--batch-size",
            "8",
            "--experiment",
            "pneumoscope-test",
        ],
        &uri,
    );

    let saved = read_json(run_dir.join("mlflow.json"));
    let run_id = saved["run_id"].as_str().unwrap().to_string();
    let got = get(&format!("{uri}/api/2.0/mlflow/runs/get?run_id={run_id}"));
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    assert_eq!(got["run"]["info"]["run_name"], "tiny-run");
    let params = got["run"]["data"]["params"].as_array().unwrap();
    let param = |k: &str| {
        params
            .iter()
            .find(|p| p["key"] == k)
            .map(|p| p["value"].as_str().unwrap().to_string())
    };
    assert_eq!(param("image_size").as_deref(), Some("32"));
    assert_eq!(param("limit").as_deref(), Some("48"));
    assert_eq!(
        param("augmentation.rotation_degrees").as_deref(),
        Some("15.0")
    );

    // Both epochs of validation AUC, as in metrics.csv.
    let history = get(&format!(
        "{uri}/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=val_auc"
    ));
    let steps: Vec<i64> = history["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, vec![1, 2]);
    let last_auc = history::read(&run_dir.join("metrics.csv"))
        .unwrap()
        .last()
        .unwrap()
        .val_auc;
    let logged = history["metrics"][1]["value"].as_f64().unwrap();
    assert!(
        (logged - last_auc).abs() < 1e-6,
        "logged {logged} vs csv {last_auc}"
    );

    let files = artifacts(&uri, &run_id, "");
    for name in [
        "training_curves.png",
        "metrics.csv",
        "config.json",
        "split.json",
        "best-card.json",
    ] {
        assert!(
            files.iter().any(|f| f == name),
            "{name} missing from the run's artefacts {files:?}"
        );
    }

    let test = small_test_folder(&dir, 4);
    let export = dir.join("export");
    pneumoscope(
        &[
            "export",
            "--card",
            run_dir.join("best-card.json").to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
            "--out",
            export.to_str().unwrap(),
            "--version",
            "0.0.1-test",
        ],
        &uri,
    );
    let card = read_json(export.join("model-card.json"));
    let weights = card["weights"]["file"].as_str().unwrap();
    assert!(
        weights.ends_with("-v0.0.1-test.int8.safetensors"),
        "{weights}"
    );
    let exported = artifacts(&uri, &run_id, "export");
    for name in [
        weights,
        "model-card.json",
        "confusion_matrix.png",
        "roc.png",
    ] {
        assert!(
            exported.iter().any(|f| f == &format!("export/{name}")),
            "export/{name} missing from {exported:?}"
        );
    }
    let got = get(&format!("{uri}/api/2.0/mlflow/runs/get?run_id={run_id}"));
    let metrics = got["run"]["data"]["metrics"].as_array().unwrap();
    let auc = metrics
        .iter()
        .find(|m| m["key"] == "test_int8_roc_auc")
        .expect("test_int8_roc_auc logged")["value"]
        .as_f64()
        .unwrap();
    assert!((auc - card["metrics"]["test"]["roc_auc"].as_f64().unwrap()).abs() < 1e-9);

    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
