//! The raw pieces of the files a model card names (weights, OOD statistics): little-endian f32
//! payloads and the sha256 that ties each file to its card.

use sha2::{Digest, Sha256};

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
}
