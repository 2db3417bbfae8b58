//! The triage table for many images: progress, cancel, sort by probability, CSV export.

use super::dicom_panel::warning_text;
use super::errors::UiError;
use super::i18n::{Lang, T, band_short};
use super::util::{download_text, revoke};
use super::{Analysis, use_state};
use leptos::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Position in the order the files were given.
    pub index: usize,
    pub name: String,
    pub result: Result<Analysis, UiError>,
}

impl Row {
    /// None for unreadable files and for images refused as unlike the training X-rays.
    fn probability(&self) -> Option<f32> {
        self.result
            .as_ref()
            .ok()
            .filter(|a| a.shown())
            .map(|a| a.probability)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sort {
    Given,
    HighFirst,
    LowFirst,
}

#[derive(Clone, Copy)]
pub struct BatchState {
    pub rows: RwSignal<Vec<Row>>,
    pub total: RwSignal<usize>,
    pub running: RwSignal<bool>,
    pub cancelled: RwSignal<bool>,
    pub sort: RwSignal<Sort>,
    generation: RwSignal<u64>,
}

impl BatchState {
    pub fn new() -> Self {
        Self {
            rows: RwSignal::new(Vec::new()),
            total: RwSignal::new(0),
            running: RwSignal::new(false),
            cancelled: RwSignal::new(false),
            sort: RwSignal::new(Sort::HighFirst),
            generation: RwSignal::new(0),
        }
    }

    /// Stops the batch in progress (if any) and returns the generation of the next job.
    pub fn new_generation(&self) -> u64 {
        self.generation.update(|g| *g += 1);
        self.generation.get_untracked()
    }

    pub fn is_current(&self, generation: u64) -> bool {
        self.generation.get_untracked() == generation
    }

    pub fn owns(&self, url: &str) -> bool {
        self.rows.with_untracked(|rows| {
            rows.iter()
                .any(|r| r.result.as_ref().is_ok_and(|a| a.url == url))
        })
    }

    /// A new batch: the previous one's images go (`forget` drops their files).
    pub fn start(&self, total: usize, forget: impl Fn(&str)) {
        for row in self.rows.get_untracked() {
            if let Ok(a) = &row.result {
                revoke(&a.url);
                forget(&a.url);
            }
        }
        self.rows.set(Vec::new());
        self.total.set(total);
        self.cancelled.set(false);
        self.running.set(true);
    }

    pub fn push(&self, row: Row) {
        self.rows.update(|rows| rows.push(row));
    }

    pub fn finish(&self, generation: u64) {
        self.running.set(false);
        if !self.is_current(generation) {
            self.cancelled.set(true);
        }
    }

    pub fn cancel(&self) {
        self.new_generation();
    }

    fn sorted(&self) -> Vec<Row> {
        let mut rows = self.rows.get();
        match self.sort.get() {
            Sort::Given => rows.sort_by_key(|r| r.index),
            // Unreadable and refused files last, whichever the direction.
            Sort::HighFirst => rows.sort_by(|a, b| {
                b.probability()
                    .unwrap_or(-1.0)
                    .total_cmp(&a.probability().unwrap_or(-1.0))
            }),
            Sort::LowFirst => rows.sort_by(|a, b| {
                a.probability()
                    .unwrap_or(2.0)
                    .total_cmp(&b.probability().unwrap_or(2.0))
            }),
        }
        rows
    }
}

/// The table as CSV (one line per file, in the order shown).
fn csv(rows: &[Row], lang: Lang) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from(
        "file,probability,label,band,inference_ms,gradcam_ms,ood,ood_distance,error\n",
    );
    for row in rows {
        let line = match &row.result {
            Ok(a) => {
                let ood = a.ood.status();
                let distance = a
                    .ood
                    .distance()
                    .map(|(d, _)| format!("{d:.3}"))
                    .unwrap_or_default();
                let (probability, label, band) = if a.shown() {
                    (
                        format!("{:.4}", a.probability),
                        quote(&a.label),
                        a.band.as_str().to_string(),
                    )
                } else {
                    Default::default()
                };
                format!(
                    "{},{probability},{label},{band},{:.1},{:.1},{ood},{distance},\n",
                    quote(&row.name),
                    a.timings.inference_ms,
                    a.timings.gradcam_ms
                )
            }
            Err(e) => format!("{},,,,,,,,{}\n", quote(&row.name), quote(&e.message(lang))),
        };
        out.push_str(&line);
    }
    out
}

#[component]
pub fn BatchView() -> impl IntoView {
    let state = use_state();
    let batch = state.batch;
    let visible = move || batch.running.get() || batch.rows.with(|r| !r.is_empty());
    let toggle_sort = move |_| {
        batch.sort.update(|s| {
            *s = match s {
                Sort::HighFirst => Sort::LowFirst,
                _ => Sort::HighFirst,
            }
        })
    };
    let arrow = move || match batch.sort.get() {
        Sort::HighFirst => " ▼",
        Sort::LowFirst => " ▲",
        Sort::Given => "",
    };
    let export = move |_| {
        download_text(
            &csv(&batch.sorted(), state.lang.get_untracked()),
            "text/csv;charset=utf-8",
            "pneumoscope-triage.csv",
        )
    };
    let open = move |row: &Row| {
        if let Ok(a) = &row.result {
            state.error.set(None);
            state.current.set(Some(a.clone()));
            if let Some(el) = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.get_element_by_id("result"))
            {
                el.scroll_into_view();
            }
        } else if let Err(e) = &row.result {
            state.error.set(Some(e.clone()));
        }
    };

    view! {
        <Show when=visible>
            <section class="batch">
                <h2>{move || state.t(T::Batch)}</h2>
                <div class="batch-bar">
                    <span data-testid="batch-progress">
                        {move || format!("{} {} / {}", state.t(T::BatchProgress), batch.rows.with(Vec::len), batch.total.get())}
                        {move || batch.cancelled.get().then(|| format!(" — {}", state.t(T::Cancelled)))}
                    </span>
                    <progress max=move || batch.total.get().max(1).to_string() prop:value=move || batch.rows.with(Vec::len) as f64></progress>
                    <Show when=move || batch.running.get()>
                        <button data-testid="batch-cancel" on:click=move |_| batch.cancel()>{move || state.t(T::Cancel)}</button>
                    </Show>
                    <button data-testid="csv-export" disabled=move || batch.rows.with(Vec::is_empty) on:click=export>{move || state.t(T::CsvExport)}</button>
                </div>
                <p class="hint">{move || state.t(T::SortHint)}</p>
                <table data-testid="batch-table">
                    <thead>
                        <tr>
                            <th>{move || state.t(T::Thumbnail)}</th>
                            <th>{move || state.t(T::File)}</th>
                            <th>
                                <button class="sort" data-testid="sort-probability" on:click=toggle_sort>
                                    {move || state.t(T::Probability)}{arrow}
                                </button>
                            </th>
                            <th>{move || state.t(T::Class)}</th>
                            <th>{move || state.t(T::Band)}</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || batch.sorted() key=|row| (row.index, row.name.clone()) let:row>
                            {
                                let clicked = row.clone();
                                let refused = row.result.as_ref().is_ok_and(|a| !a.shown());
                                let (thumb, probability, label, band) = match &row.result {
                                    Ok(a) if refused => (
                                        view! { <img class="thumb" src=a.url.clone() alt=""/> }.into_any(),
                                        String::new(),
                                        String::new(),
                                        None,
                                    ),
                                    Ok(a) => (
                                        view! { <img class="thumb" src=a.url.clone() alt=""/> }.into_any(),
                                        format!("{:.4}", a.probability),
                                        a.label.clone(),
                                        Some(a.band),
                                    ),
                                    Err(_) => (view! { <span class="thumb none">"—"</span> }.into_any(), String::new(), String::new(), None),
                                };
                                let error = row.result.clone().err();
                                let failed = error.is_some();
                                view! {
                                    <tr class="row" class:failed=failed class:refused=refused data-refused=refused.to_string() on:click=move |_| open(&clicked)>
                                        <td>{thumb}</td>
                                        <td class="file">
                                            {row.name.clone()}
                                            {dicom_flag(&row.result)}
                                        </td>
                                        <td class="num" data-col="probability">{probability}</td>
                                        <td data-col="label">
                                            {move || if refused { state.t(T::OodRefusedShort).to_string() } else { label.clone() }}
                                        </td>
                                        <td data-col="band">
                                            {move || match (&band, &error) {
                                                (Some(b), _) => state.t(band_short(*b)).to_string(),
                                                (None, Some(e)) => e.message(state.lang.get()),
                                                _ if refused => state.t(T::OodShort).to_string(),
                                                _ => String::new(),
                                            }}
                                        </td>
                                    </tr>
                                }
                            }
                        </For>
                    </tbody>
                </table>
            </section>
        </Show>
    }
}

/// A ⚠ after the file name when its DICOM header raised warnings (the text on hover).
fn dicom_flag(result: &Result<Analysis, UiError>) -> Option<impl IntoView + use<>> {
    let state = use_state();
    let warnings = result.as_ref().ok()?.dicom.as_ref()?.warnings.clone();
    (!warnings.is_empty()).then(move || {
        let title = move || {
            warnings
                .iter()
                .map(|w| warning_text(w, state.lang.get()))
                .collect::<Vec<_>>()
                .join("\n")
        };
        view! { <span class="dicom-flag" data-testid="dicom-flag" title=title>"⚠"</span> }
    })
}
