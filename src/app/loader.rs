//! Loading the model: the analysis worker, model card, weights download with progress, then
//! (in the worker) backend choice, sha256 verification and warm-up; the fall back to the CPU if
//! the GPU device is lost, and a fresh worker if one ends.

use super::backend::{self, BrowserBackend, CpuReason};
use super::errors::UiError;
use super::i18n::T;
use super::util::{fetch_bytes, fetch_text};
use super::worker::host::{AnalysisWorker, Ended};
use super::worker::protocol::{Reply, Request, payload};
use super::{AppState, Engine, use_state};
use crate::card::ModelCard;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::rc::Rc;

const CARD_URL: &str = "weights/model-card.json";

/// The weights URL; the sha256 query makes it change whenever the weights do (the service worker
/// caches it forever; see public/sw.js).
pub fn weights_url(card: &ModelCard) -> String {
    format!(
        "weights/{}?sha256={}",
        card.weights.file, card.weights.sha256
    )
}

/// The OOD statistics' URL, content-addressed the same way.
fn ood_url(info: &crate::card::OodInfo) -> String {
    format!("weights/{}?sha256={}", info.file, info.sha256)
}

pub fn start(state: AppState, force_cpu: bool) {
    spawn_local(async move {
        if let Err(error) = load(state, force_cpu).await {
            state.engine.set(Engine::Failed);
            state.error.set(Some(error));
        }
    });
}

async fn load(state: AppState, force_cpu: bool) -> Result<(), UiError> {
    state.retire_worker();
    state.engine.set(Engine::Starting);
    let worker = AnalysisWorker::start(
        move |why| state.device_lost.set(Some(why)),
        move |why| restart_after_end(state, why),
    )
    .await
    .map_err(UiError::WorkerStart)?;

    state.engine.set(Engine::LoadingCard);
    let text = fetch_text(CARD_URL).await.map_err(UiError::CardFetch)?;
    let card = ModelCard::from_json(&text).map_err(|e| UiError::CardInvalid(e.to_string()))?;
    state.card.set(Some(card.clone()));

    let weights = match state.weights.get_value() {
        Some(bytes) => bytes,
        None => {
            let total = card.weights.bytes as u64;
            state.engine.set(Engine::Downloading { loaded: 0, total });
            let bytes = fetch_bytes(&weights_url(&card), |loaded| {
                state.engine.set(Engine::Downloading {
                    loaded,
                    total: total.max(loaded),
                })
            })
            .await
            .map_err(UiError::WeightsFetch)?;
            Rc::new(bytes)
        }
    };

    let mut payloads = vec![payload(&weights)];
    if let Some(info) = &card.ood {
        let bytes = fetch_bytes(&ood_url(info), |_| {})
            .await
            .map_err(UiError::OodFetch)?;
        payloads.push(payload(&bytes));
    }

    // The worker verifies the weights, chooses the backend and warms up.
    state.engine.set(Engine::Verifying);
    let request = Request::Load {
        force_cpu,
        card: Box::new(card.clone()),
    };
    let chosen = match worker.request(&request, payloads).await {
        Ok((Reply::Loaded(loaded), _)) => loaded?,
        Ok((other, _)) => return Err(UiError::WorkerStart(format!("unexpected reply {other:?}"))),
        Err(Ended(why)) => return Err(UiError::WorkerEnded(why)),
    };
    // Keep the reason when falling back after a device loss.
    if state.backend.get_untracked() != Some(BrowserBackend::Cpu(CpuReason::DeviceLost))
        || matches!(chosen, BrowserBackend::WebGpu { .. })
    {
        state.backend.set(Some(chosen));
    }
    // Only verified weights are kept for a later reload (e.g. after a GPU loss).
    state.weights.set_value(Some(weights));
    state.worker.set_value(Some(Rc::clone(&worker)));
    state.engine.set(Engine::Ready);
    super::bench::start_if_requested(state, worker, card);
    Ok(())
}

/// The worker ended by itself (a panic, out of memory, terminated): whatever it was analysing
/// fails with `why`, and a fresh worker loads the same weights on the same kind of backend.
fn restart_after_end(state: AppState, why: String) {
    // A worker that ends while loading is not restarted: `load` reports it (no crash loop).
    if state.worker.with_value(Option::is_none) {
        return;
    }
    web_sys::console::warn_1(&format!("analysis worker ended ({why}); starting a new one").into());
    // At once, so that the next file waits for the new worker instead of asking the old one.
    state.worker.set_value(None);
    state.engine.set(Engine::Starting);
    let cpu = matches!(
        state.backend.get_untracked(),
        Some(BrowserBackend::Cpu(
            CpuReason::Forced | CpuReason::DeviceLost
        ))
    );
    start(state, cpu);
}

/// Switches to the CPU when wgpu reports the device lost.
pub fn watch_device_loss(state: AppState) {
    Effect::new(move |_| {
        if let Some(why) = state.device_lost.get() {
            fall_back_to_cpu(state, UiError::DeviceLost(why));
        }
    });
}

/// Reloads the model on the CPU (weights are kept in memory) and shows why.
pub fn fall_back_to_cpu(state: AppState, why: UiError) {
    if !matches!(
        state.backend.get_untracked(),
        Some(BrowserBackend::WebGpu { .. })
    ) {
        return;
    }
    state
        .backend
        .set(Some(BrowserBackend::Cpu(CpuReason::DeviceLost)));
    state.error.set(Some(why));
    start(state, true);
}

/// The status line (backend) and the loading progress.
#[component]
pub fn Loader() -> impl IntoView {
    let state = use_state();
    let status = move || match state.backend.get() {
        None => state.t(T::StartingBackend).to_string(),
        Some(BrowserBackend::WebGpu { adapter }) => format!("WebGPU — {adapter}"),
        Some(BrowserBackend::Cpu(CpuReason::Unavailable)) => state.t(T::CpuUnavailable).to_string(),
        Some(BrowserBackend::Cpu(CpuReason::Forced)) => state.t(T::CpuForced).to_string(),
        Some(BrowserBackend::Cpu(CpuReason::DeviceLost)) => state.t(T::CpuAfterLoss).to_string(),
    };
    let stage = move || match state.engine.get() {
        Engine::Starting => state.t(T::StartingBackend).to_string(),
        Engine::LoadingCard => state.t(T::LoadingCard).to_string(),
        Engine::Downloading { loaded, total } => format!(
            "{} — {} / {}",
            state.t(T::Downloading),
            megabytes(loaded),
            megabytes(total)
        ),
        Engine::Verifying => state.t(T::Verifying).to_string(),
        Engine::Ready => state.t(T::Ready).to_string(),
        Engine::Failed => String::new(),
    };
    let fraction = move || match state.engine.get() {
        Engine::Downloading { loaded, total } if total > 0 => Some(loaded as f64 / total as f64),
        Engine::Verifying => Some(1.0),
        _ => None,
    };
    let forced = backend::cpu_forced_by_url();
    view! {
        <section class="loader" aria-live="polite">
            <div class="status-row">
                <span class="chip" data-testid="status">{status}</span>
                <label class="force-cpu">
                    <input type="checkbox" prop:checked=forced on:change=move |ev| backend::set_cpu_forced(event_target_checked(&ev))/>
                    " " {move || state.t(T::ForceCpu)}
                </label>
            </div>
            <p class="stage" data-testid="engine" data-state=move || format!("{:?}", state.engine.get()).split([' ', '{']).next().unwrap_or_default().to_lowercase()>
                {stage}
            </p>
            {move || fraction().map(|f| view! { <progress max="1" prop:value=f></progress> })}
            <Show when=move || state.engine.get() == Engine::Failed>
                <button on:click=move |_| {
                    state.error.set(None);
                    start(state, backend::cpu_forced_by_url() || matches!(state.backend.get_untracked(), Some(BrowserBackend::Cpu(_))));
                }>{move || state.t(T::Retry)}</button>
            </Show>
        </section>
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
