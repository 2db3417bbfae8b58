//! Importing a Keras DenseNet classifier — `keras.applications.DenseNet121/169/201` (any block
//! counts) with the notebooks' head: global average pooling, optional `Dense` + ReLU layers and
//! `Dropout`, then `Dense(1, sigmoid)` or `Dense(N, softmax)` — saved as `.h5` or `.keras`, onto
//! our [`DenseNet`](crate::model::DenseNet).
//!
//! Every layer that holds weights must find its place; anything else (another architecture, a
//! custom layer, a missing weight, a shape that does not fit) is an error naming the layer.

mod archive;
mod folder;
mod graph;
mod mapping;

pub use archive::Archive;
pub use folder::{FolderRequest, InputScaling, Written, import_to_folder};
pub use mapping::Imported;

#[derive(Debug, thiserror::Error)]
pub enum KerasError {
    #[error("cannot read the Keras file: {0}")]
    Read(String),
    #[error("not a Keras model file: {0}")]
    NotKeras(String),
    #[error("layer '{layer}' ({class}): {why}")]
    Unsupported {
        layer: String,
        class: String,
        why: String,
    },
    #[error("layer '{layer}' has no '{variable}' weight in the file")]
    MissingWeight { layer: String, variable: String },
    #[error("not a Keras DenseNet: {0}")]
    NotDenseNet(String),
    #[error("the weights do not fit the DenseNet read from the config:{0}")]
    Mismatch(String),
}

/// Reads `bytes` (a `.h5` or `.keras` file) and maps the model onto ours.
pub fn import(bytes: Vec<u8>, device: &burn::prelude::Device) -> Result<Imported, KerasError> {
    let archive = Archive::from_bytes(bytes)?;
    mapping::map(&archive, device)
}
