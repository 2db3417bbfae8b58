//! Runs analyses one at a time: a single image goes to the detail view, several to the triage
//! table. The browser gets control back between images, so the page stays responsive.

use super::batch::Row;
use super::errors::UiError;
use super::loader::fall_back_to_cpu;
use super::util::{object_url, png_url, read_file, revoke, yield_now};
use super::{Analysis, AppState, Engine};
use crate::ood::Fix;
use crate::predict::{Timings, decode_with_fixes};
use futures::lock::Mutex;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::rc::Rc;
use std::sync::Arc;

thread_local! {
    static RUNNING: Rc<Mutex<()>> = Rc::new(Mutex::new(()));
}

/// Analyses the user's files (already filtered to what they meant to give).
pub fn submit(state: AppState, files: Vec<web_sys::File>) {
    if files.is_empty() {
        state.error.set(Some(UiError::NoImages));
        return;
    }
    // A new request replaces a batch still running.
    let generation = state.batch.new_generation();
    spawn_local(async move {
        let lock = RUNNING.with(Rc::clone);
        let _running = lock.lock().await;
        wait_until_ready(state).await;
        if files.len() == 1 {
            single(state, &files[0], &[]).await;
        } else {
            many(state, files, generation).await;
        }
    });
}

async fn wait_until_ready(state: AppState) {
    while state.pipeline().is_none() {
        if state.engine.get_untracked() == Engine::Failed {
            return;
        }
        super::util::sleep(100).await;
    }
}

/// Analyses `file` again after `fixes` (the "Invert" / "Rotate" buttons of a refused image).
pub fn again_with(state: AppState, file: web_sys::File, fixes: Vec<Fix>) {
    state.batch.new_generation();
    spawn_local(async move {
        let lock = RUNNING.with(Rc::clone);
        let _running = lock.lock().await;
        wait_until_ready(state).await;
        single(state, &file, &fixes).await;
    });
}

async fn analyse(
    state: AppState,
    file: &web_sys::File,
    fixes: &[Fix],
) -> Result<Analysis, UiError> {
    crate::decode::check_file_size(file.size() as u64)?;
    let bytes = read_file(file).await.map_err(UiError::FileRead)?;
    let Some(pipeline) = state.pipeline() else {
        return Err(UiError::Weights(
            state
                .error
                .get_untracked()
                .map(|e| e.message(state.lang.get_untracked()))
                .unwrap_or_default(),
        ));
    };
    // Decoded here rather than in `Pipeline::analyse` because the view needs the image too.
    let (decoded, decode_ms) = decode_with_fixes(&bytes, fixes)?;
    let image = decoded.image;
    match pipeline.analyse_image(&image).await {
        Ok(p) => Ok(Analysis {
            name: file.name(),
            url: {
                // A browser cannot show a DICOM file, nor the file as fixed: show the grey
                // levels the model was given.
                let url = if decoded.dicom.is_some() || !fixes.is_empty() {
                    png_url(&image)
                } else {
                    object_url(file)
                };
                state.remember_file(&url, file.clone());
                url
            },
            probability: p.probability,
            label: p.label,
            band: p.band,
            cam: Arc::new(p.cam),
            timings: Timings {
                decode_ms,
                ..p.timings
            },
            dicom: decoded.dicom,
            ood: p.ood,
            shown_anyway: false,
            fixes: fixes.to_vec(),
        }),
        Err(e) => {
            let error = UiError::from(e);
            if matches!(error, UiError::Readback(_)) {
                fall_back_to_cpu(state, error.clone());
            }
            Err(error)
        }
    }
}

async fn single(state: AppState, file: &web_sys::File, fixes: &[Fix]) {
    state.working.set(Some(file.name()));
    state.error.set(None);
    // The previous result goes away, so that nothing shown can be mistaken for this file's.
    if let Some(old) = state.current.get_untracked()
        && !state.batch.owns(&old.url)
    {
        revoke(&old.url);
        state.forget_file(&old.url);
    }
    state.current.set(None);
    yield_now().await;
    let result = analyse(state, file, fixes).await;
    state.working.set(None);
    match result {
        Ok(analysis) => state.current.set(Some(analysis)),
        Err(error) => state.error.set(Some(error)),
    }
}

async fn many(state: AppState, files: Vec<web_sys::File>, generation: u64) {
    state.error.set(None);
    state.current.set(None);
    state.batch.start(files.len(), |url| state.forget_file(url));
    for (index, file) in files.iter().enumerate() {
        if !state.batch.is_current(generation) {
            break;
        }
        yield_now().await;
        let result = analyse(state, file, &[]).await;
        state.batch.push(Row {
            index,
            name: file.name(),
            result,
        });
    }
    state.batch.finish(generation);
}
