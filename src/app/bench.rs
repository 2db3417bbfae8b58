//! A benchmark hook for `scripts/bench.sh`, off the normal UI path: it does nothing unless the
//! page URL has `?bench=N` (optionally `&benchsize=S`, default the card's input size, and
//! `&benchimage=URL`, a same-origin X-ray file).
//!
//! With it, `window.__pneumoscopeWasmMemory` is the page's `WebAssembly.Memory` (the analysis
//! worker's is `self.__pneumoscopeWasmMemory` there: read both between images), and once the
//! model is ready the analysis worker times N forwards of a `[1, 3, S, S]`
//! input (probabilities read back: the same end point as onnxruntime-web's `session.run`) and,
//! given an image, N whole analyses of it (decode + preprocess + forward + OOD check + Grad-CAM,
//! what one dropped file costs), after one warm-up of each, then sets `window.__pneumoscopeBench`
//! to `{backend, size, forward_ms: [...], analyse_ms: [...], gradcam_ms: [...], ood}` (or
//! `{error}`). `ood` says whether the image passed the out-of-distribution check: a refused one
//! also pays for the batched fix search, so its analyse time is not a normal image's.

use super::AppState;
use super::backend::BrowserBackend;
use super::util::fetch_bytes;
use super::worker::host::AnalysisWorker;
use super::worker::protocol::{Reply, Request, payload};
use crate::card::ModelCard;
use crate::model::probabilities;
use crate::predict::Pipeline;
use burn::prelude::*;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use web_time::Instant;

fn param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
}

fn set_global(name: &str, value: &JsValue) {
    if let Some(window) = web_sys::window() {
        let _ = js_sys::Reflect::set(&window, &JsValue::from_str(name), value);
    }
}

/// Called on the page once the model is ready; a no-op without `?bench=`.
pub fn start_if_requested(state: AppState, worker: Rc<AnalysisWorker>, card: ModelCard) {
    let Some(runs) = param("bench").and_then(|n| n.parse::<usize>().ok()) else {
        return;
    };
    set_global("__pneumoscopeWasmMemory", &wasm_bindgen::memory());
    if runs == 0 {
        return;
    }
    let size = param("benchsize")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(card.input_size);
    let backend = match state.backend.get_untracked() {
        Some(BrowserBackend::WebGpu { .. }) => "webgpu",
        _ => "cpu",
    };
    let image_url = param("benchimage");
    spawn_local(async move {
        let result = match bench_in_worker(&worker, runs, size, image_url.as_deref()).await {
            Ok(mut timed) => {
                timed["backend"] = backend.into();
                timed["size"] = size.into();
                timed
            }
            Err(error) => serde_json::json!({ "backend": backend, "size": size, "error": error }),
        };
        set_global(
            "__pneumoscopeBench",
            &js_sys::JSON::parse(&result.to_string()).unwrap_or(JsValue::NULL),
        );
    });
}

async fn bench_in_worker(
    worker: &AnalysisWorker,
    runs: usize,
    size: usize,
    image_url: Option<&str>,
) -> Result<serde_json::Value, String> {
    let mut payloads = Vec::new();
    if let Some(url) = image_url {
        let bytes = fetch_bytes(url, |_| {})
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        payloads.push(payload(&bytes));
    }
    match worker
        .request(&Request::Bench { runs, size }, payloads)
        .await
    {
        Ok((Reply::Bench(json), _)) => serde_json::from_str(&json).map_err(|e| e.to_string()),
        Ok((other, _)) => Err(format!("unexpected reply {other:?}")),
        Err(ended) => Err(ended.0),
    }
}

/// In the analysis worker: N timed forwards of a fixed input at `size`, and N whole analyses of
/// `image` (if given, and only at the card's size), each after one warm-up:
/// `{forward_ms, analyse_ms, gradcam_ms, ood}` or `{error}`.
pub async fn timings(
    pipeline: &Pipeline,
    runs: usize,
    size: usize,
    image: Option<Vec<u8>>,
) -> serde_json::Value {
    match run(pipeline, runs, size, image).await {
        Ok(Timed {
            forward,
            analyse,
            gradcam,
            ood,
        }) => serde_json::json!({
            "forward_ms": forward, "analyse_ms": analyse, "gradcam_ms": gradcam, "ood": ood,
        }),
        Err(error) => serde_json::json!({ "error": error }),
    }
}

#[derive(Default)]
struct Timed {
    forward: Vec<f64>,
    analyse: Vec<f64>,
    gradcam: Vec<f64>,
    /// "passed", "refused" or "unavailable": the image's OOD verdict (None without an image).
    ood: Option<&'static str>,
}

async fn run(
    pipeline: &Pipeline,
    runs: usize,
    size: usize,
    image: Option<Vec<u8>>,
) -> Result<Timed, String> {
    // A fixed, image-like input (values do not change the cost).
    let values: Vec<f32> = (0..3 * size * size)
        .map(|i| ((i % 251) as f32 / 125.0) - 1.0)
        .collect();
    let mut forward = Vec::new();
    for i in 0..=runs {
        let input = Tensor::<4>::from_data(
            TensorData::new(values.clone(), [1, 3, size, size]),
            &pipeline.device,
        );
        let start = Instant::now();
        let output = probabilities(pipeline.model.forward(input));
        output
            .into_data_async()
            .await
            .map_err(|e| format!("{e:?}"))?;
        if i > 0 {
            forward.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mut timed = Timed {
        forward,
        ..Timed::default()
    };
    // `analyse` resizes to the card's size: whole analyses only make sense there.
    let Some(bytes) = image.filter(|_| size == pipeline.card.input_size) else {
        return Ok(timed);
    };
    for i in 0..=runs {
        let start = Instant::now();
        let prediction = pipeline.analyse(&bytes).await.map_err(|e| e.to_string())?;
        if i > 0 {
            timed.analyse.push(start.elapsed().as_secs_f64() * 1e3);
            timed.gradcam.push(prediction.timings.gradcam_ms);
        }
        timed.ood = Some(prediction.ood.status());
    }
    Ok(timed)
}
