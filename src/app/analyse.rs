//! Runs analyses one at a time, in the analysis worker: a single image goes to the detail view,
//! several to the triage table. If the worker ends on a file, that file's row says so and the
//! rest wait for a fresh worker.

use super::batch::Row;
use super::errors::UiError;
use super::loader::fall_back_to_cpu;
use super::util::{blob_url, object_url, read_buffer, revoke, yield_now};
use super::worker::host::Ended;
use super::worker::protocol::{Reply, Request};
use super::{Analysis, AppState, Engine};
use crate::ood::Fix;
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
    while state.worker().is_none() || state.engine.get_untracked() != Engine::Ready {
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
    let request = Request::Analyse {
        fixes: fixes.to_vec(),
    };
    // A worker that ends during a file may not have been the file's fault (it may have ended
    // just before the file reached it): the file gets one more try on the fresh worker. If
    // that one ends too, the file is what ends them.
    let mut tries = 0;
    let (outcome, png) = loop {
        tries += 1;
        wait_until_ready(state).await;
        // The file's bytes go to the worker as they are (transferred, not copied into this
        // page's wasm memory), so they are read again for a second try.
        let bytes = read_buffer(file).await.map_err(UiError::FileRead)?;
        let Some(worker) = state.worker() else {
            if state.engine.get_untracked() != Engine::Failed {
                // The worker ended while the file was being read: not the file's doing.
                tries -= 1;
                continue;
            }
            return Err(UiError::Weights(
                state
                    .error
                    .get_untracked()
                    .map(|e| e.message(state.lang.get_untracked()))
                    .unwrap_or_default(),
            ));
        };
        match worker.request(&request, vec![bytes]).await {
            Ok((Reply::Analysed(Ok(outcome)), payloads)) => {
                break (outcome, payloads.into_iter().next());
            }
            Ok((Reply::Analysed(Err(error)), _)) => {
                if matches!(error, UiError::Readback(_)) {
                    fall_back_to_cpu(state, error.clone());
                }
                return Err(error);
            }
            Ok((other, _)) => {
                return Err(UiError::WorkerEnded(format!("unexpected reply {other:?}")));
            }
            Err(Ended(_)) if tries < 2 => continue,
            Err(Ended(why)) => return Err(UiError::WorkerEnded(why)),
        }
    };
    // A browser cannot show a DICOM file, nor the file as fixed or stretched, and may not turn
    // it as its EXIF says: the worker then sent the grey levels the model was given.
    let url = match png {
        Some(png) => blob_url(&png, "image/png"),
        None => object_url(file),
    };
    state.remember_file(&url, file.clone());
    Ok(Analysis {
        name: file.name(),
        url,
        probability: outcome.probability,
        label: outcome.label,
        band: outcome.band,
        cam: Arc::new(outcome.cam),
        timings: outcome.timings,
        dicom: outcome.dicom,
        ood: outcome.ood,
        shown_anyway: false,
        fixes: fixes.to_vec(),
    })
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
