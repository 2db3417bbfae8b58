//! The raw pieces of the files a model card names (weights, OOD statistics): the safetensors
//! container with its `format` metadata, little-endian f32 payloads and the sha256 that ties
//! each file to its card.

use safetensors::{Dtype, SafeTensorError, SafeTensors, tensor::TensorView};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// One tensor of a container being written, owning its little-endian bytes.
pub struct ContainerTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl ContainerTensor {
    pub fn f32(name: impl Into<String>, shape: Vec<usize>, values: &[f32]) -> Self {
        Self {
            name: name.into(),
            dtype: Dtype::F32,
            shape,
            data: le_bytes(values),
        }
    }
}

/// A safetensors container of `tensors` with `metadata` (none written when empty).
pub fn serialise_container(
    tensors: &[ContainerTensor],
    metadata: HashMap<String, String>,
) -> Vec<u8> {
    let views = tensors.iter().map(|t| {
        let view = TensorView::new(t.dtype, t.shape.clone(), &t.data);
        (
            t.name.as_str(),
            view.expect("our tensors' bytes fit their shape"),
        )
    });
    let metadata = (!metadata.is_empty()).then_some(metadata);
    safetensors::serialize(views, metadata).expect("serialising in memory cannot fail")
}

/// A container's metadata (empty when it has none): its header is parsed and checked against
/// the file's length, its tensors' data not read.
pub fn container_metadata(bytes: &[u8]) -> Result<HashMap<String, String>, SafeTensorError> {
    let (_, header) = SafeTensors::read_metadata(bytes)?;
    Ok(header.metadata().clone().unwrap_or_default())
}

/// The `format` entry that names what a container holds ("" without one).
pub fn format_of(metadata: &HashMap<String, String>) -> &str {
    metadata.get("format").map_or("", String::as_str)
}

/// `values` as little-endian bytes (safetensors' byte order).
pub fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Little-endian bytes back to f32 values (a trailing partial value is ignored).
pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest of bytes that do not match their card: `found` where `expected` was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashMismatch {
    pub found: String,
    pub expected: String,
}

/// Fails unless `bytes` hash to `expected` (a hex sha256 as in the card; case ignored).
pub fn check_sha256(bytes: &[u8], expected: &str) -> Result<(), HashMismatch> {
    let found = sha256_hex(bytes);
    if found.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(HashMismatch {
            found,
            expected: expected.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks() {
        let values = [1.5f32, -0.0, f32::MAX];
        assert_eq!(f32s(&le_bytes(&values)), values);
        let hex = sha256_hex(b"abc");
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(check_sha256(b"abc", &hex.to_uppercase()).is_ok());
        assert_eq!(check_sha256(b"abd", &hex).unwrap_err().expected, hex);
    }

    #[test]
    fn containers_round_trip_with_their_format() {
        let tensors = [ContainerTensor::f32("x", vec![2], &[1.0, -2.0])];
        let meta = HashMap::from([("format".to_string(), "test-v1".to_string())]);
        let bytes = serialise_container(&tensors, meta.clone());
        assert_eq!(container_metadata(&bytes).unwrap(), meta);
        assert_eq!(format_of(&meta), "test-v1");
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(f32s(st.tensor("x").unwrap().data()), [1.0, -2.0]);

        let bare = serialise_container(&tensors, HashMap::new());
        assert_eq!(format_of(&container_metadata(&bare).unwrap()), "");
        assert!(container_metadata(&bare[..bare.len() - 1]).is_err()); // cut: sizes disagree
        assert!(container_metadata(b"not a container").is_err());
    }
}
