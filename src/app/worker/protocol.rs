//! The messages between the page and its analysis worker. Each is a JS array: a CBOR header
//! (serde: request or reply, with its id) first, then the large byte payloads (a file, the
//! weights, a PNG) as transferable buffers of their own, never copied into the header.

use crate::app::backend::BrowserBackend;
use crate::app::errors::UiError;
use crate::card::{Band, ModelCard};
use crate::decode::dicom::DicomInfo;
use crate::gradcam::Cam;
use crate::ood::{Fix, OodCheck};
use crate::predict::Timings;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

/// What the page asks; the worker answers each with one [`Reply`] of the same id, in order.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Choose a backend, verify and load the weights (payload 0) and the OOD statistics
    /// (payload 1, when the card names them), warm up.
    Load {
        force_cpu: bool,
        card: Box<ModelCard>,
    },
    /// Decode the file (payload 0), apply `fixes`, analyse it.
    Analyse { fixes: Vec<Fix> },
    /// The bench hook's timings (`super::super::bench`), of an image (payload 0) if given.
    Bench { runs: usize, size: usize },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// Sent once, unasked (id 0): the worker's wasm runs and listens.
    Started,
    Loaded(Result<BrowserBackend, UiError>),
    /// With payload 0, when the page cannot show the file itself (DICOM, or fixed): the grey
    /// levels the model was given, as PNG.
    Analysed(Result<Outcome, UiError>),
    /// The bench result as JSON (`super::super::bench`).
    Bench(String),
    /// Unasked (id 0): the GPU device was lost; the worker cannot analyse any more.
    DeviceLost(String),
}

/// One analysed file, as the page shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub probability: f32,
    pub label: String,
    pub band: Band,
    pub cam: Cam,
    pub timings: Timings,
    pub dicom: Option<DicomInfo>,
    pub ood: OodCheck,
}

/// A message with its id.
#[derive(Debug, Serialize, Deserialize)]
struct Header<T> {
    id: u64,
    body: T,
}

/// Packs `body` and `payloads` into a message and the list of buffers to transfer with it.
pub fn pack<T: Serialize>(
    id: u64,
    body: &T,
    payloads: Vec<js_sys::Uint8Array>,
) -> (js_sys::Array, js_sys::Array) {
    let mut header = Vec::new();
    ciborium::into_writer(&Header { id, body }, &mut header)
        .expect("serialising our own messages into memory cannot fail");
    let message = js_sys::Array::of1(&js_sys::Uint8Array::from(header.as_slice()));
    let transfer = js_sys::Array::new();
    for payload in payloads {
        transfer.push(&payload.buffer());
        message.push(&payload);
    }
    (message, transfer)
}

/// Unpacks a message made by [`pack`]: its id, body and payloads.
pub fn unpack<T: DeserializeOwned>(data: &JsValue) -> Result<(u64, T, Vec<Vec<u8>>), String> {
    let parts: &js_sys::Array = data.dyn_ref().ok_or("the message is not an array")?;
    let header: js_sys::Uint8Array = parts
        .get(0)
        .dyn_into()
        .map_err(|_| "the message has no header")?;
    let Header { id, body } = ciborium::from_reader::<Header<T>, _>(header.to_vec().as_slice())
        .map_err(|e| format!("unreadable message: {e}"))?;
    let payloads = (1..parts.length())
        .map(|i| js_sys::Uint8Array::new(&parts.get(i)).to_vec())
        .collect();
    Ok((id, body, payloads))
}

/// A copy of `bytes` in a buffer of its own, ready to transfer.
pub fn payload(bytes: &[u8]) -> js_sys::Uint8Array {
    js_sys::Uint8Array::from(bytes)
}
