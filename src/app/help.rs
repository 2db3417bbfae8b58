//! "How to read Grad-CAM".

use super::i18n::T;
use super::use_state;
use leptos::prelude::*;

#[component]
pub fn HelpPanel() -> impl IntoView {
    let state = use_state();
    view! {
        <details class="panel" open>
            <summary>{move || state.t(T::HelpTitle)}</summary>
            <ul>
                <li>{move || state.t(T::Help1)}</li>
                <li>{move || state.t(T::Help2)}</li>
                <li>{move || state.t(T::Help3)}</li>
                <li>{move || state.t(T::Help4)}</li>
            </ul>
        </details>
    }
}
