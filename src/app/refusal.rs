//! An image refused by the out-of-distribution check: says so plainly, shows the image but no
//! probability, class or heatmap, offers "Show the result anyway", and "Invert" / "Rotate" when
//! the image would pass once fixed.

use super::analyse::again_with;
use super::i18n::T;
use super::{Analysis, AppState, use_state};
use crate::ood::{Fix, OodCheck};
use leptos::prelude::*;

/// The button text for a fix.
pub fn fix_label(state: AppState, fix: Fix) -> String {
    match fix {
        Fix::Invert => state.t(T::Invert).to_string(),
        Fix::Rotate90 => format!("{} 90° ↻", state.t(T::Rotate)),
        Fix::Rotate180 => format!("{} 180°", state.t(T::Rotate)),
        Fix::Rotate270 => format!("{} 90° ↺", state.t(T::Rotate)),
    }
}

fn fix_id(fix: Fix) -> &'static str {
    match fix {
        Fix::Invert => "invert",
        Fix::Rotate90 => "rotate90",
        Fix::Rotate180 => "rotate180",
        Fix::Rotate270 => "rotate270",
    }
}

/// A line under a shown result: the OOD verdict (or that there is none for these weights).
#[component]
pub fn OodStatus(analysis: Analysis) -> impl IntoView {
    let state = use_state();
    let ood = analysis.ood;
    let status = ood.status();
    let text = move || match ood {
        OodCheck::Unavailable => state.t(T::OodUnavailable).to_string(),
        OodCheck::Passed {
            distance,
            threshold,
        } => {
            format!(
                "{} ({} {distance:.2} ≤ {} {threshold:.2})",
                state.t(T::OodPassed),
                state.t(T::OodDistance),
                state.t(T::OodLimit)
            )
        }
        OodCheck::Refused { .. } => state.t(T::ShownAnyway).to_string(),
    };
    view! {
        <p class=format!("ood-status {status}") data-testid="ood-status" data-status=status>{text}</p>
        <OodStatusFixes fixes=analysis.fixes.clone()/>
    }
}

#[component]
pub fn RefusalView(analysis: Analysis) -> impl IntoView {
    let state = use_state();
    let (distance, threshold) = analysis.ood.distance().unwrap_or_default();
    let uniform = matches!(analysis.ood, OodCheck::Refused { uniform: true, .. });
    let offer = analysis.ood.fix().map(|fix| {
        let url = analysis.url.clone();
        let mut fixes = analysis.fixes.clone();
        fixes.push(fix);
        let hint = if fix == Fix::Invert {
            T::LooksInverted
        } else {
            T::LooksRotated
        };
        let apply = move |_| {
            if let Some(file) = state.file_for(&url) {
                again_with(state, file, fixes.clone());
            }
        };
        view! {
            <p data-testid="ood-hint">{move || state.t(hint)}</p>
            <button data-testid="apply-fix" data-fix=fix_id(fix) on:click=apply>
                {move || fix_label(state, fix)}
            </button>
        }
    });
    view! {
        <section class="result refused" id="result" data-id=analysis.url.clone() data-refused="true">
            <div class="verdict">
                <h2 class="file-name">{analysis.name.clone()}</h2>
                <div class="refusal" role="alert" data-testid="ood-refusal">
                    <p class="refusal-title"><strong>{move || state.t(T::OodRefused)}</strong></p>
                    <p>{move || state.t(T::OodExplain)}</p>
                    <p class="small" data-testid="ood-distance">
                        {move || if uniform {
                            state.t(T::OodUniform).to_string()
                        } else {
                            format!("{}: {distance:.2} > {} {threshold:.2}", state.t(T::OodDistance), state.t(T::OodLimit))
                        }}
                    </p>
                    {offer}
                    <button class="link" data-testid="show-anyway"
                        on:click=move |_| state.current.update(|c| if let Some(c) = c { c.shown_anyway = true })>
                        {move || state.t(T::ShowAnyway)}
                    </button>
                </div>
                <OodStatusFixes fixes=analysis.fixes.clone()/>
                <p class="disclaimer small">{move || state.t(T::Disclaimer)}</p>
            </div>
            <figure class="refused-image">
                <img src=analysis.url.clone() alt="" data-testid="refused-image"/>
            </figure>
        </section>
    }
}

#[component]
fn OodStatusFixes(fixes: Vec<Fix>) -> impl IntoView {
    let state = use_state();
    (!fixes.is_empty()).then(|| view! {
        <p class="ood-status" data-testid="fix-applied">
            {move || format!("{}: {}", state.t(T::FixApplied), fixes.iter().map(|f| fix_label(state, *f)).collect::<Vec<_>>().join(", "))}
        </p>
    })
}
