//! Analysis off the page's main thread: decoding, preprocessing, the model, the OOD check and
//! Grad-CAM run in a dedicated worker (the same wasm in its worker role), so that the page
//! stays responsive and a file that crashes the analysis costs that file only.
//! [`host`] is the page's side, [`guest`] the worker's, [`protocol`] what they say.

pub mod guest;
pub mod host;
pub mod protocol;
