//! The result of one image: probability, class at the card's threshold, band for a clinician,
//! confidence gauge and timings. The Grad-CAM view sits beside it.

use super::dicom_panel::DicomPanel;
use super::heatmap::HeatmapView;
use super::i18n::{T, band_text};
use super::refusal::{OodStatus, RefusalView};
use super::use_state;
use crate::card::Band;
use leptos::prelude::*;

fn band_class(band: Band) -> &'static str {
    match band {
        Band::Strong => "band strong",
        Band::Moderate => "band moderate",
        Band::GreyZone => "band grey",
        Band::Borderline => "band borderline",
        Band::LeansNegative => "band negative",
    }
}

#[component]
pub fn ResultView() -> impl IntoView {
    let state = use_state();
    let threshold = move || {
        state
            .card
            .with(|c| c.as_ref().map(|c| c.threshold).unwrap_or(0.5))
    };
    view! {
        <Show when=move || state.working.with(Option::is_some)>
            <p class="working" aria-live="polite">{move || format!("{} {}…", state.t(T::Analysing), state.working.get().unwrap_or_default())}</p>
        </Show>
        {move || state.current.get().map(|a| {
            if !a.shown() {
                return view! { <RefusalView analysis=a/> }.into_any();
            }
            let band = a.band;
            let percent = (a.probability * 100.0).clamp(0.0, 100.0);
            view! {
                <section class="result" id="result" data-id=a.url.clone() data-refused=a.ood.refused().to_string()>
                    <div class="verdict">
                        <h2 class="file-name">{a.name.clone()}</h2>
                        <div class="metric">
                            <span class="metric-label">{move || state.t(T::Probability)}</span>
                            <span class="big" data-testid="probability">{format!("{:.4}", a.probability)}</span>
                        </div>
                        <div class="gauge" role="meter" aria-valuemin="0" aria-valuemax="1" aria-valuenow=a.probability.to_string()
                            aria-label=move || state.t(T::Gauge)>
                            <div class=format!("gauge-fill {}", band_class(band)) style:width=format!("{percent:.1}%")></div>
                            <div class="gauge-threshold" style:left=move || format!("{:.1}%", threshold() * 100.0)></div>
                        </div>
                        <div class="gauge-scale"><span>"0"</span><span>"0.5"</span><span>"1"</span></div>
                        <p class="metric">
                            <span class="metric-label">{move || format!("{} {:.2})", state.t(T::Predicted), threshold())}</span>
                            <strong data-testid="label">{a.label.clone()}</strong>
                        </p>
                        <p class=band_class(band)>
                            <span class="metric-label">{move || state.t(T::Interpretation)}</span>
                            <span data-testid="band">{move || state.t(band_text(band))}</span>
                        </p>
                        <p class="timings" data-testid="timings">
                            {move || format!(
                                "{}: {} {:.0} ms · {} {:.0} ms · {} {:.0} ms",
                                state.t(T::Timings),
                                state.t(T::Decode), a.timings.decode_ms,
                                state.t(T::Inference), a.timings.inference_ms,
                                state.t(T::GradCam), a.timings.gradcam_ms,
                            )}
                        </p>
                        <OodStatus analysis=a.clone()/>
                        {a.dicom.clone().map(|info| view! { <DicomPanel info/> })}
                        <p class="disclaimer small">{move || state.t(T::Disclaimer)}</p>
                    </div>
                    <HeatmapView analysis=a.clone()/>
                </section>
            }.into_any()
        })}
    }
}
