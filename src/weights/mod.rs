//! Weights: the shipped int8 container (`codec`), the torchvision importer (`import`, native
//! only) and the checks that turn a wrong or damaged file into a clear message.

pub mod codec;
#[cfg(not(target_arch = "wasm32"))]
pub mod import;

use crate::tensor_bytes::{HashMismatch, check_sha256};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("the weights file is not a valid safetensors container (damaged or truncated?): {0}")]
    Container(String),
    #[error("the weights file has format '{found}', expected '{expected}'")]
    Format { found: String, expected: String },
    #[error("tensor '{name}' is malformed: {why}")]
    Tensor { name: String, why: String },
    #[error("the weights do not fit this architecture:{0}")]
    Mismatch(String),
    #[error(
        "the weights' sha256 is {found}, the model card expects {expected} (corrupted download?)"
    )]
    Hash { found: String, expected: String },
    #[error("cannot read the checkpoint: {0}")]
    Checkpoint(String),
}

/// Fails unless `bytes` hash to `expected` (a hex sha256, as in the model card).
pub fn verify_sha256(bytes: &[u8], expected: &str) -> Result<(), WeightsError> {
    check_sha256(bytes, expected)
        .map_err(|HashMismatch { found, expected }| WeightsError::Hash { found, expected })
}

/// Summarises what did not fit, naming the keys, for `WeightsError::Mismatch`.
pub(crate) fn describe_mismatch(
    result: &burn::store::ApplyResult,
    ignore: impl Fn(&str) -> bool,
) -> Option<String> {
    let missing: Vec<_> = result
        .missing
        .iter()
        .map(|(path, _)| path.as_str())
        .filter(|p| !ignore(p))
        .collect();
    let unused: Vec<_> = result
        .unused
        .iter()
        .map(String::as_str)
        .filter(|p| !ignore(p) && !p.ends_with("num_batches_tracked"))
        .collect();
    let errors: Vec<_> = result.errors.iter().map(|e| e.to_string()).collect();
    if missing.is_empty() && unused.is_empty() && errors.is_empty() {
        return None;
    }
    let list = |title: &str, items: &[String]| {
        if items.is_empty() {
            String::new()
        } else {
            let shown: Vec<_> = items.iter().take(8).cloned().collect();
            let more = if items.len() > 8 {
                format!(" … and {} more", items.len() - 8)
            } else {
                String::new()
            };
            format!("\n  {title} ({}): {}{more}", items.len(), shown.join(", "))
        }
    };
    let to_strings = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
    Some(format!(
        "{}{}{}",
        list("missing", &to_strings(missing)),
        list("unexpected", &to_strings(unused)),
        list("wrong shape", &errors)
    ))
}
