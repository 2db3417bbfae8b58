//! Pneumoscope: private chest X-ray screening with DenseNet121, shared by the browser app and
//! the native CLI. The flow of one X-ray:
//!
//! bytes → [`decode`] (PNG, JPEG, [`decode::dicom`]) → [`preprocess`] → [`model`] → [`ood`] check and
//! [`gradcam`] → [`predict::Prediction`],
//! with input size, normalisation, labels and threshold read from the [`card`] that travels
//! with the [`weights`].

#[cfg(not(target_arch = "wasm32"))]
pub mod allocator;
#[cfg(target_arch = "wasm32")]
pub mod app;
pub mod calibration;
pub mod card;
pub mod decode;
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod gradcam;
#[cfg(not(target_arch = "wasm32"))]
pub mod keras;
pub mod metrics;
#[cfg(not(target_arch = "wasm32"))]
pub mod mlflow;
pub mod model;
pub mod ood;
pub mod predict;
pub mod preprocess;
pub mod subgroups;
pub mod tensor_bytes;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
pub mod weights;
