//! The browser app (Leptos, client-side rendered). One component per job:
//! [`loader`] (backend, weights, warm-up), [`dropzone`] (files, folders, paste),
//! [`result`] (probability, band, gauge; [`dicom`] header panel; [`refusal`] of inputs unlike the
//! training X-rays), [`heatmap`] (Grad-CAM overlay), [`batch`] (triage
//! table, CSV), [`model_card`] and [`help`] panels, [`i18n`] (English/French).

mod analyse;
mod backend;
mod batch;
mod bench;
mod dicom_panel;
mod dropzone;
mod errors;
mod heatmap;
mod help;
mod i18n;
mod loader;
mod model_card;
mod refusal;
mod result;
mod util;
mod worker;

use crate::card::{Band, ModelCard};
use crate::decode::dicom::DicomInfo;
use crate::gradcam::Cam;
use crate::ood::{Fix, OodCheck};
use crate::predict::Timings;
use backend::BrowserBackend;
use errors::UiError;
use i18n::{Lang, T};
use leptos::prelude::*;
use std::rc::Rc;
use std::sync::Arc;
use worker::host::AnalysisWorker;

/// One analysed image, as the detail view shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub name: String,
    /// A `blob:` URL of the user's file (local to this page).
    pub url: String,
    pub probability: f32,
    pub label: String,
    pub band: Band,
    pub cam: Arc<Cam>,
    pub timings: Timings,
    /// Header summary and warnings when the file was DICOM.
    pub dicom: Option<DicomInfo>,
    /// The out-of-distribution verdict: a refused image shows no result unless the user asks.
    pub ood: OodCheck,
    /// The user asked to see the result of a refused image.
    pub shown_anyway: bool,
    /// What the user asked to be done to the image first (e.g. invert it).
    pub fixes: Vec<Fix>,
}

impl Analysis {
    /// Probability, class, band and heatmap may be shown.
    pub fn shown(&self) -> bool {
        self.shown_anyway || !self.ood.refused()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Engine {
    Starting,
    LoadingCard,
    Downloading { loaded: u64, total: u64 },
    Verifying,
    Ready,
    Failed,
}

/// State shared by the components (all fields are cheap copyable handles).
#[derive(Clone, Copy)]
pub struct AppState {
    pub lang: RwSignal<Lang>,
    pub backend: RwSignal<Option<BrowserBackend>>,
    pub engine: RwSignal<Engine>,
    pub card: RwSignal<Option<ModelCard>>,
    pub current: RwSignal<Option<Analysis>>,
    /// The message under the drop zone; the app stays usable whatever it says.
    pub error: RwSignal<Option<UiError>>,
    /// Set by wgpu's device-lost callback.
    pub device_lost: RwSignal<Option<String>>,
    /// Analysing a single image: its name.
    pub working: RwSignal<Option<String>>,
    pub batch: batch::BatchState,
    /// The analysis worker, once it has loaded the model.
    worker: StoredValue<Option<Rc<AnalysisWorker>>, LocalStorage>,
    weights: StoredValue<Option<Rc<Vec<u8>>>, LocalStorage>,
    /// The user's files behind the analyses on the page, by their `url`, so that one can be
    /// analysed again with a fix (a `File` is only a handle; it cannot live in a signal).
    files: StoredValue<Vec<(String, web_sys::File)>, LocalStorage>,
}

impl AppState {
    fn new() -> Self {
        Self {
            lang: RwSignal::new(Lang::initial()),
            backend: RwSignal::new(None),
            engine: RwSignal::new(Engine::Starting),
            card: RwSignal::new(None),
            current: RwSignal::new(None),
            error: RwSignal::new(None),
            device_lost: RwSignal::new(None),
            working: RwSignal::new(None),
            batch: batch::BatchState::new(),
            worker: StoredValue::new_local(None),
            weights: StoredValue::new_local(None),
            files: StoredValue::new_local(Vec::new()),
        }
    }

    pub fn t(&self, key: T) -> &'static str {
        key.get(self.lang.get())
    }

    /// The analysis worker, when it is ready.
    pub fn worker(&self) -> Option<Rc<AnalysisWorker>> {
        self.worker.with_value(|w| w.clone())
    }

    /// Stops the analysis worker (before a new one loads).
    pub fn retire_worker(&self) {
        if let Some(worker) = self.worker.try_update_value(Option::take).flatten() {
            worker.retire();
        }
    }

    pub fn remember_file(&self, url: &str, file: web_sys::File) {
        self.files.update_value(|f| f.push((url.to_string(), file)));
    }

    pub fn file_for(&self, url: &str) -> Option<web_sys::File> {
        self.files.with_value(|f| {
            f.iter()
                .find(|(u, _)| u == url)
                .map(|(_, file)| file.clone())
        })
    }

    /// The page no longer shows the analysis at `url`.
    pub fn forget_file(&self, url: &str) {
        self.files.update_value(|f| f.retain(|(u, _)| u != url));
    }
}

pub fn use_state() -> AppState {
    expect_context::<AppState>()
}

/// Starts the app in `<body>`, or, in the analysis worker, the worker's side.
pub fn mount() {
    if worker::guest::in_worker() {
        worker::guest::run();
        return;
    }
    util::install_panic_hook();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    Effect::new(move |_| state.lang.get().remember());
    loader::start(state, backend::cpu_forced_by_url());
    loader::watch_device_loss(state);

    view! {
        <header class="top">
            <div class="brand">
                <img src="icons/icon.svg" alt="" width="40" height="40"/>
                <div>
                    <h1>{move || state.t(T::Title)}</h1>
                    <p class="tagline">{move || state.t(T::Tagline)}</p>
                </div>
            </div>
            <LanguageSwitch/>
        </header>
        <p class="disclaimer" role="note">{move || state.t(T::Disclaimer)}</p>
        <main>
            <loader::Loader/>
            <dropzone::DropZone/>
            <ErrorBox/>
            <result::ResultView/>
            <batch::BatchView/>
            <div class="panels">
                <help::HelpPanel/>
                <model_card::ModelCardPanel/>
            </div>
        </main>
        <footer><p>{move || state.t(T::Privacy)}</p></footer>
    }
}

#[component]
fn LanguageSwitch() -> impl IntoView {
    let state = use_state();
    view! {
        <label class="language">
            {move || state.t(T::Language)} " "
            <select
                data-testid="language"
                prop:value=move || state.lang.get().code()
                on:change=move |ev| {
                    if let Some(lang) = Lang::from_code(&event_target_value(&ev)) {
                        state.lang.set(lang);
                    }
                }
            >
                <option value="en">"English"</option>
                <option value="fr">"Français"</option>
            </select>
        </label>
    }
}

#[component]
fn ErrorBox() -> impl IntoView {
    let state = use_state();
    view! {
        <Show when=move || state.error.with(Option::is_some)>
            <div class="error" role="alert">
                <p data-testid="error">{move || state.error.get().map(|e| e.message(state.lang.get()))}</p>
                <button class="link" on:click=move |_| state.error.set(None)>{move || state.t(T::Dismiss)}</button>
            </div>
        </Show>
    }
}
