//! Experiment tracking on an MLflow tracking server, through its REST API (no Python needed):
//! params, per-epoch metrics and artefact files of a run. Artefacts go through the server's
//! artefact proxy (`mlflow server` serves it by default), so the client needs no storage access.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable MLflow's own clients read the server address from.
pub const URI_ENV: &str = "MLFLOW_TRACKING_URI";

/// What identifies a run on a server; saved in the run folder (`mlflow.json`) so that a resumed
/// training run and a later `export` add to the same MLflow run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRef {
    pub tracking_uri: String,
    pub experiment_id: String,
    pub run_id: String,
    /// `mlflow-artifacts:/<experiment>/<run>/artifacts`.
    pub artifact_uri: String,
}

pub struct MlflowRun {
    pub run: RunRef,
    agent: ureq::Agent,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        // MLflow explains a refusal in the body: keep it for the error message.
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// Turns a response into its JSON body, or an error that carries MLflow's own message.
fn reply(
    what: &str,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> anyhow::Result<Value> {
    let mut response = response
        .map_err(|e| anyhow::anyhow!("MLflow {what}: cannot reach the tracking server: {e}"))?;
    let status = response.status();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    anyhow::ensure!(
        status.is_success(),
        "MLflow {what}: HTTP {status}: {}",
        text.chars().take(500).collect::<String>()
    );
    Ok(if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    })
}

impl MlflowRun {
    fn api(tracking_uri: &str, path: &str) -> String {
        format!("{}/api/2.0/{path}", tracking_uri.trim_end_matches('/'))
    }

    fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        reply(
            path,
            self.agent
                .post(Self::api(&self.run.tracking_uri, path))
                .send_json(body),
        )
    }

    /// Creates a run in `experiment` (created if missing) on the server at `tracking_uri`.
    pub fn start(
        tracking_uri: &str,
        experiment: &str,
        run_name: &str,
        tags: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            tracking_uri.starts_with("http://") || tracking_uri.starts_with("https://"),
            "MLflow tracking URI {tracking_uri:?}: expected an http(s):// address of an MLflow tracking server"
        );
        let agent = agent();
        let found = reply(
            "experiments/get-by-name",
            agent
                .get(Self::api(tracking_uri, "mlflow/experiments/get-by-name"))
                .query("experiment_name", experiment)
                .call(),
        );
        let experiment_id = match found {
            Ok(v) => v["experiment"]["experiment_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            Err(e) if e.to_string().contains("RESOURCE_DOES_NOT_EXIST") => {
                let created = reply(
                    "experiments/create",
                    agent
                        .post(Self::api(tracking_uri, "mlflow/experiments/create"))
                        .send_json(json!({ "name": experiment })),
                )?;
                created["experiment_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            }
            Err(e) => return Err(e),
        };
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect();
        let created = reply(
            "runs/create",
            agent.post(Self::api(tracking_uri, "mlflow/runs/create")).send_json(json!({
                "experiment_id": experiment_id, "run_name": run_name, "start_time": now_ms(), "tags": tags,
            })),
        )?;
        let info = &created["run"]["info"];
        let run = RunRef {
            tracking_uri: tracking_uri.trim_end_matches('/').to_string(),
            experiment_id,
            run_id: info["run_id"].as_str().unwrap_or_default().to_string(),
            artifact_uri: info["artifact_uri"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        };
        anyhow::ensure!(
            !run.run_id.is_empty(),
            "MLflow runs/create: no run id in the reply"
        );
        Ok(Self { run, agent })
    }

    /// Continues a run created earlier (marks it running again).
    pub fn reopen(run: RunRef) -> anyhow::Result<Self> {
        let this = Self {
            run,
            agent: agent(),
        };
        this.set_status("RUNNING")?;
        Ok(this)
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(&self.run)?)?;
        Ok(())
    }

    pub fn load(path: &Path) -> anyhow::Result<RunRef> {
        Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
    }

    /// Logs parameters (MLflow keeps the first value of a key; values are cut at 6000 characters).
    pub fn log_params(&self, params: &[(String, String)]) -> anyhow::Result<()> {
        for chunk in params.chunks(100) {
            let params: Vec<Value> = chunk
                .iter()
                .map(
                    |(k, v)| json!({ "key": k, "value": v.chars().take(6000).collect::<String>() }),
                )
                .collect();
            self.post(
                "mlflow/runs/log-batch",
                json!({ "run_id": self.run.run_id, "params": params }),
            )?;
        }
        Ok(())
    }

    /// Logs metric values at `step` (the epoch, for training).
    pub fn log_metrics(&self, metrics: &[(&str, f64)], step: usize) -> anyhow::Result<()> {
        let timestamp = now_ms();
        let metrics: Vec<Value> = metrics
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| json!({ "key": k, "value": v, "timestamp": timestamp, "step": step }))
            .collect();
        self.post(
            "mlflow/runs/log-batch",
            json!({ "run_id": self.run.run_id, "metrics": metrics }),
        )
        .map(|_| ())
    }

    /// Uploads `file` as the artefact `dir/<file name>` (or at the root when `dir` is empty).
    pub fn log_artifact(&self, file: &Path, dir: &str) -> anyhow::Result<()> {
        let root = self.run.artifact_uri.strip_prefix("mlflow-artifacts:/").ok_or_else(|| {
            anyhow::anyhow!(
                "MLflow run artefacts live at {:?}, which this client cannot write to; start the server with artefact serving on (`mlflow server`, the default)",
                self.run.artifact_uri
            )
        })?;
        let name = file
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("{} is not a file", file.display()))?
            .to_string_lossy();
        let path = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", dir.trim_matches('/'))
        };
        let bytes =
            std::fs::read(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}/{path}",
            self.run.tracking_uri,
            root.trim_matches('/')
        );
        reply("artifact upload", self.agent.put(url).send(&bytes[..])).map(|_| ())
    }

    /// `FINISHED`, `FAILED`, `KILLED` (interrupted) or `RUNNING`.
    pub fn set_status(&self, status: &str) -> anyhow::Result<()> {
        let mut body = json!({ "run_id": self.run.run_id, "status": status });
        if status != "RUNNING" {
            body["end_time"] = json!(now_ms());
        }
        self.post("mlflow/runs/update", body).map(|_| ())
    }
}

/// A JSON object flattened to `a.b.c = value` pairs (how a nested config becomes MLflow params).
pub fn flatten(value: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    walk(
                        &if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        },
                        v,
                        out,
                    );
                }
            }
            Value::Null => out.push((prefix.to_string(), "none".into())),
            Value::String(s) => out.push((prefix.to_string(), s.clone())),
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_config_flattens_to_dotted_params() {
        let params = flatten(
            &json!({ "epochs": 3, "init": null, "model": { "depth": [6, 12] }, "data": "x" }),
        );
        assert_eq!(
            params,
            vec![
                ("data".into(), "x".into()),
                ("epochs".into(), "3".into()),
                ("init".into(), "none".into()),
                ("model.depth".into(), "[6,12]".into()),
            ]
        );
    }

    #[test]
    fn a_non_http_uri_is_refused_clearly() {
        let err = MlflowRun::start("./mlruns", "e", "r", &[])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("http(s)://"), "{err}");
    }
}
