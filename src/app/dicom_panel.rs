//! The DICOM header panel of the detail view: what the file says it is, and why to be careful
//! with it. Patient identifiers are never in `DicomInfo`, so they cannot appear here.

use super::i18n::{Lang, T};
use super::use_state;
use crate::decode::dicom::{DicomInfo, DicomWarning};
use leptos::prelude::*;

/// The warning in the interface language (the CLI prints the English `Display`).
pub fn warning_text(warning: &DicomWarning, lang: Lang) -> String {
    let fr = lang == Lang::Fr;
    match (warning, fr) {
        (DicomWarning::NotRadiograph(m), false) => format!(
            "Modality is {}: the model was trained on frontal chest radiographs (CR/DX); this result may be meaningless.",
            m.as_deref().unwrap_or("not stated")
        ),
        (DicomWarning::NotRadiograph(m), true) => format!(
            "La modalité est {} : le modèle a été entraîné sur des radiographies thoraciques de face (CR/DX) ; ce résultat peut n'avoir aucun sens.",
            m.as_deref().unwrap_or("non indiquée")
        ),
        (DicomWarning::Lateral(v), false) => format!(
            "View position is {v} (lateral): the model was trained on frontal (PA/AP) chest radiographs; this result may be meaningless."
        ),
        (DicomWarning::Lateral(v), true) => format!(
            "L'incidence est {v} (profil) : le modèle a été entraîné sur des radiographies thoraciques de face (PA/AP) ; ce résultat peut n'avoir aucun sens."
        ),
        (DicomWarning::MultiFrame(n), false) => {
            format!("The file has {n} frames; only the first frame was analysed.")
        }
        (DicomWarning::MultiFrame(n), true) => {
            format!("Le fichier contient {n} images (frames) ; seule la première a été analysée.")
        }
    }
}

#[component]
pub fn DicomPanel(info: DicomInfo) -> impl IntoView {
    let state = use_state();
    let missing = move || state.t(T::NotStated).to_string();
    let field = move |value: &Option<String>| {
        let value = value.clone();
        move || value.clone().unwrap_or_else(missing)
    };
    let warnings = info.warnings.clone();
    view! {
        <section class="dicom panel" data-testid="dicom">
            <h3>{move || state.t(T::DicomTitle)}</h3>
            <Show when={let empty = warnings.is_empty(); move || !empty}>
                <ul class="dicom-warnings" role="alert" data-testid="dicom-warnings">
                    {let warnings = warnings.clone(); move || warnings.iter().map(|w| view! { <li>{warning_text(w, state.lang.get())}</li> }).collect_view()}
                </ul>
            </Show>
            <dl>
                <dt>{move || state.t(T::Modality)}</dt><dd data-testid="dicom-modality">{field(&info.modality)}</dd>
                <dt>{move || state.t(T::ViewPosition)}</dt><dd>{field(&info.view_position)}</dd>
                <dt>{move || state.t(T::BodyPart)}</dt><dd>{field(&info.body_part)}</dd>
                <dt>{move || state.t(T::StudyDate)}</dt><dd>{field(&info.study_date.as_deref().map(display_date))}</dd>
                <dt>{move || state.t(T::Frames)}</dt><dd>{info.frames}</dd>
                <dt>{move || state.t(T::TransferSyntax)}</dt><dd>{info.transfer_syntax.clone()}</dd>
            </dl>
            <p class="hint small">{move || state.t(T::DicomPrivacy)}</p>
        </section>
    }
}

/// DICOM dates are `YYYYMMDD`; show them as ISO 8601, or as stored if they are not.
fn display_date(da: &str) -> String {
    if da.len() == 8 && da.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &da[..4], &da[4..6], &da[6..])
    } else {
        da.to_string()
    }
}
