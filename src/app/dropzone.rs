//! Getting X-rays in: drag and drop, a file picker, a folder picker and paste from the clipboard.

use super::analyse::submit;
use super::i18n::T;
use super::{Engine, use_state};
use leptos::ev;
use leptos::prelude::*;

fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// Folders hold other files too: keep what looks like a PNG, JPEG or DICOM. DICOM exports
/// often have no extension (IM000001), so extension-less files are kept too (their content
/// decides); DICOMDIR is an index, not an image.
fn images_only(files: Vec<web_sys::File>) -> Vec<web_sys::File> {
    files
        .into_iter()
        .filter(|f| {
            let name = f.name().to_ascii_lowercase();
            matches!(
                f.type_().as_str(),
                "image/png" | "image/jpeg" | "application/dicom"
            ) || [".png", ".jpg", ".jpeg", ".dcm", ".dicom"]
                .iter()
                .any(|e| name.ends_with(e))
                || (!name.contains('.') && name != "dicomdir")
        })
        .collect()
}

#[component]
pub fn DropZone() -> impl IntoView {
    let state = use_state();
    let hover = RwSignal::new(false);
    // `webkitdirectory` (pick a whole folder) is not in Leptos' attribute list.
    let folder = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = folder.get() {
            let _ = input.set_attribute("webkitdirectory", "");
        }
    });

    let on_files = move |ev: ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        submit(state, files_of(input.files()));
        // Choosing the same file again must fire `change` again.
        input.set_value("");
    };
    let on_folder = move |ev: ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        submit(state, images_only(files_of(input.files())));
        input.set_value("");
    };
    let on_drop = move |ev: ev::DragEvent| {
        ev.prevent_default();
        hover.set(false);
        submit(state, files_of(ev.data_transfer().and_then(|d| d.files())));
    };
    let paste = window_event_listener(ev::paste, move |ev: web_sys::ClipboardEvent| {
        let files = files_of(ev.clipboard_data().and_then(|d| d.files()));
        if !files.is_empty() {
            ev.prevent_default();
            submit(state, files);
        }
    });
    on_cleanup(move || paste.remove());

    view! {
        <section
            class="dropzone"
            class:hover=move || hover.get()
            on:dragover=move |ev: ev::DragEvent| { ev.prevent_default(); hover.set(true); }
            on:dragleave=move |_| hover.set(false)
            on:drop=on_drop
        >
            <p>
                {move || state.t(T::DropHere)} " "
                <label class="button">
                    {move || state.t(T::ChooseFiles)}
                    // No `accept` filter: it cannot express extension-less DICOM files (IM000001),
                    // and the decoder refuses anything else with a clear message.
                    <input type="file" class="visually-hidden" data-testid="file-input" multiple on:change=on_files/>
                </label>
                " · "
                <label class="button secondary">
                    {move || state.t(T::ChooseFolder)}
                    <input type="file" class="visually-hidden" data-testid="folder-input" node_ref=folder multiple on:change=on_folder/>
                </label>
            </p>
            <p class="hint">{move || state.t(T::DropHint)}</p>
            <Show when=move || !matches!(state.engine.get(), Engine::Ready | Engine::Failed)>
                <p class="hint">{move || state.t(T::WaitModel)}</p>
            </Show>
        </section>
    }
}
