//! The worker side: owns the model and answers the page's requests one at a time. A panic or
//! an allocation failure here ends this worker only; the page sees it end and starts another.

use super::protocol::{self, Outcome, Reply, Request, payload};
use crate::app::backend::{self, BrowserBackend};
use crate::app::bench;
use crate::app::errors::UiError;
use crate::app::i18n::Lang;
use crate::card::ModelCard;
use crate::ood::Fix;
use crate::predict::{Pipeline, Timings, decode_with_fixes};
use futures::lock::Mutex;
use image::DynamicImage;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

thread_local! {
    static PIPELINE: RefCell<Option<Rc<Pipeline>>> = const { RefCell::new(None) };
    /// Requests run in the order they came, one at a time.
    static TURN: Rc<Mutex<()>> = Rc::new(Mutex::new(()));
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// True when this wasm instance runs in a dedicated worker (the page's analysis worker).
pub fn in_worker() -> bool {
    js_sys::global().has_type::<DedicatedWorkerGlobalScope>()
}

fn post(id: u64, reply: &Reply, payloads: Vec<js_sys::Uint8Array>) {
    let (message, transfer) = protocol::pack(id, reply, payloads);
    if let Err(e) = scope().post_message_with_transfer(&message, &transfer) {
        web_sys::console::error_2(&"analysis worker: cannot reply".into(), &e);
    }
}

/// Listens for the page's requests and tells it so.
pub fn run() {
    std::panic::set_hook(Box::new(console_error_panic_hook::hook));
    // What the browser bench reads between images (benches/browser/bench.mjs).
    let _ = js_sys::Reflect::set(
        &scope(),
        &"__pneumoscopeWasmMemory".into(),
        &wasm_bindgen::memory(),
    );
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(|event: MessageEvent| {
        match protocol::unpack::<Request>(&event.data()) {
            Ok((id, request, payloads)) => wasm_bindgen_futures::spawn_local(async move {
                let turn = TURN.with(Rc::clone);
                let _turn = turn.lock().await;
                let (reply, payloads) = answer(request, payloads).await;
                post(id, &reply, payloads);
            }),
            Err(why) => web_sys::console::error_1(&format!("analysis worker: {why}").into()),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post(0, &Reply::Started, Vec::new());
}

async fn answer(request: Request, payloads: Vec<Vec<u8>>) -> (Reply, Vec<js_sys::Uint8Array>) {
    let mut payloads = payloads.into_iter();
    match request {
        Request::Load { force_cpu, card } => {
            let loaded = load(force_cpu, *card, payloads.next(), payloads.next()).await;
            (Reply::Loaded(loaded), Vec::new())
        }
        Request::Analyse { fixes } => {
            let bytes = payloads.next().unwrap_or_default();
            match analyse(&bytes, &fixes).await {
                Ok((outcome, png)) => (
                    Reply::Analysed(Ok(outcome)),
                    png.iter().map(|p| payload(p)).collect(),
                ),
                Err(error) => (Reply::Analysed(Err(error)), Vec::new()),
            }
        }
        Request::Bench { runs, size } => {
            let result = match pipeline() {
                Ok(pipeline) => bench::timings(&pipeline, runs, size, payloads.next()).await,
                Err(error) => serde_json::json!({ "error": error.message(Lang::En) }),
            };
            (Reply::Bench(result.to_string()), Vec::new())
        }
    }
}

fn pipeline() -> Result<Rc<Pipeline>, UiError> {
    PIPELINE
        .with(|p| p.borrow().clone())
        .ok_or_else(|| UiError::Weights("the model is not loaded".into()))
}

/// Chooses the backend, verifies and loads the weights and OOD statistics, and warms up.
async fn load(
    force_cpu: bool,
    card: ModelCard,
    weights: Option<Vec<u8>>,
    ood: Option<Vec<u8>>,
) -> Result<BrowserBackend, UiError> {
    PIPELINE.with(|p| p.borrow_mut().take());
    let (device, chosen) = backend::choose(force_cpu, |why| {
        post(0, &Reply::DeviceLost(why), Vec::new());
    })
    .await;
    let mut pipeline = Pipeline::load(card, &weights.unwrap_or_default(), &device)?;
    if pipeline.card.ood.is_some() {
        let ood = ood.ok_or_else(|| UiError::OodFetch("not given to the worker".into()))?;
        pipeline = pipeline.with_ood(&ood)?;
    }
    let size = pipeline.card.input_size as u32;
    let blank =
        DynamicImage::ImageLuma8(image::GrayImage::from_pixel(size, size, image::Luma([128])));
    pipeline.analyse_image(&blank).await?;
    PIPELINE.with(|p| *p.borrow_mut() = Some(Rc::new(pipeline)));
    Ok(chosen)
}

/// Decodes `bytes`, applies `fixes` and analyses the image. Also returns the grey levels the
/// model was given as PNG when the page cannot show the file as analysed (DICOM, fixed, turned
/// by its EXIF, which not every browser applies, or 16-bit values stretched).
async fn analyse(bytes: &[u8], fixes: &[Fix]) -> Result<(Outcome, Option<Vec<u8>>), UiError> {
    let pipeline = pipeline()?;
    crate::decode::check_file_size(bytes.len() as u64)?;
    let (decoded, decode_ms) = decode_with_fixes(bytes, fixes)?;
    let p = pipeline.analyse_image(&decoded.image).await?;
    let shown_from_pixels =
        decoded.dicom.is_some() || decoded.differs_from_file || !fixes.is_empty();
    let png = shown_from_pixels.then(|| png_bytes(&decoded.image));
    let outcome = Outcome {
        probability: p.probability,
        label: p.label,
        band: p.band,
        cam: p.cam,
        timings: Timings {
            decode_ms,
            ..p.timings
        },
        dicom: decoded.dicom,
        ood: p.ood,
    };
    Ok((outcome, png))
}

/// `image` as an 8-bit grey PNG, compressed fast: it lives only in this page's memory.
fn png_bytes(image: &DynamicImage) -> Vec<u8> {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let gray = image.to_luma8();
    let mut png = Vec::new();
    let encoded = PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Sub)
        .write_image(
            gray.as_raw(),
            gray.width(),
            gray.height(),
            image::ExtendedColorType::L8,
        );
    if encoded.is_err() {
        png.clear();
    }
    png
}
