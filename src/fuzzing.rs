//! The entry points of the fuzz targets (`fuzz/`, cargo-fuzz on nightly) and of their
//! regression test (`tests/fuzz_regressions.rs`, stable): each takes arbitrary bytes and must
//! return, never panic, hang or allocate without bound. One function per target, so that a
//! crashing input found by the fuzzer replays exactly in plain `cargo test`.

use crate::card::ModelCard;
use crate::decode;
use crate::model::DenseNetConfig;
use crate::ood::OodProfile;
use crate::weights::codec;
use burn::prelude::Device;

/// Any bytes through the decoder (PNG, JPEG, DICOM, or a typed error).
pub fn decode_bytes(data: &[u8]) {
    let _ = decode::decode(data);
}

/// Valid DICOM files to mutate, so that the fuzzer spends its time past the header checks. New
/// ones go at the end (see `dicom_seed`).
const DICOM_SEEDS: [&[u8]; 10] = [
    include_bytes!("../tests/fixtures/dicom/mono2_explicit_8bit.dcm"),
    include_bytes!("../tests/fixtures/dicom/jpeg_baseline.dcm"),
    include_bytes!("../tests/fixtures/dicom/rle_lossless.dcm"),
    include_bytes!("../tests/fixtures/dicom/deflated.dcm"),
    include_bytes!("../tests/fixtures/dicom/windowed_12bit.dcm"),
    include_bytes!("../tests/fixtures/dicom/implicit_16bit.dcm"),
    include_bytes!("../tests/fixtures/dicom/multiframe_2.dcm"),
    include_bytes!("../tests/fixtures/dicom/explicit_be_16bit.dcm"),
    include_bytes!("../tests/fixtures/dicom/jpeg_lossless_sv1_16bit.dcm"),
    include_bytes!("../tests/fixtures/dicom/jpeg_lossless_12bit.dcm"),
];

/// The first seven seeds, all there were until the twenty-first session.
const FIRST_SEEDS: usize = 7;
/// 32 × 7: below it, byte 0 picks among the first seeds exactly as before the newer ones came
/// (`pick % 7`), so a kept corpus keeps its meaning; from it up, among the newer ones.
const NEWER_FROM: u8 = 224;

fn dicom_seed(pick: u8) -> &'static [u8] {
    let index = match pick.checked_sub(NEWER_FROM) {
        None => pick as usize % FIRST_SEEDS,
        Some(newer) => FIRST_SEEDS + newer as usize % (DICOM_SEEDS.len() - FIRST_SEEDS),
    };
    DICOM_SEEDS[index]
}

/// Structure-aware DICOM: byte 0 picks a valid fixture (explicit and implicit VR, JPEG baseline
/// fragments, RLE, deflate, a VOI window, two frames, big endian, JPEG lossless), byte 1 how much
/// of its end to cut, and each following 5-byte record `(offset u32 LE, value)` overwrites one
/// byte of it.
pub fn dicom_patched(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let mut file = dicom_seed(pick).to_vec();
    let Some((&cut, patches)) = rest.split_first() else {
        return;
    };
    file.truncate(file.len() - (file.len() * cut as usize) / 1024);
    for patch in patches.chunks_exact(5) {
        let offset = u32::from_le_bytes([patch[0], patch[1], patch[2], patch[3]]) as usize;
        if !file.is_empty() {
            let at = offset % file.len();
            file[at] = patch[4];
        }
    }
    let _ = decode::decode(&file);
}

/// PNG and JPEG headers with any dimensions: bytes 0–7 are a width and a height (u32 LE)
/// written into a valid 8×8 PNG's IHDR (CRC fixed) and a valid JPEG's SOF, then both decoded.
pub fn raster_dimensions(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let width = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let height = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    let mut png = tiny_png();
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let _ = decode::decode(&png);
    let mut jpeg = tiny_jpeg();
    if let Some(sof) = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]) {
        // SOF0: marker, length (2), precision (1), height (2), width (2).
        jpeg[sof + 5..sof + 7].copy_from_slice(&(height as u16).to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&(width as u16).to_be_bytes());
    }
    let _ = decode::decode(&jpeg);
}

fn tiny_png() -> Vec<u8> {
    let mut out = Vec::new();
    image::GrayImage::from_fn(8, 8, |x, y| image::Luma([(x * 31 + y * 7) as u8]))
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encoding in memory");
    out
}

fn tiny_jpeg() -> Vec<u8> {
    let mut out = Vec::new();
    image::GrayImage::from_fn(8, 8, |x, y| image::Luma([(x * 31 + y * 7) as u8]))
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .expect("encoding in memory");
    out
}

/// A model card's JSON.
pub fn model_card(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ModelCard::from_json(text);
    }
}

/// A weights container, loaded into a tiny DenseNet.
pub fn weights(data: &[u8]) {
    let _ = codec::decode(data, &DenseNetConfig::tiny(1), &Device::flex());
}

/// An OOD statistics file (v1 or v2).
pub fn ood_statistics(data: &[u8]) {
    let _ = OodProfile::from_bytes(data);
}

/// A Keras model file (`.h5` or `.keras`), as `pneumoscope import` reads it.
pub fn keras_model(data: &[u8]) {
    let _ = crate::keras::import(data.to_vec(), &Device::flex());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_0_picks_the_first_seeds_as_before_and_reaches_every_seed() {
        for pick in 0..NEWER_FROM {
            let before = DICOM_SEEDS[pick as usize % FIRST_SEEDS];
            assert_eq!(
                dicom_seed(pick).as_ptr(),
                before.as_ptr(),
                "byte 0 = {pick}"
            );
        }
        let reached: std::collections::HashSet<_> = (0..=u8::MAX)
            .map(|pick| dicom_seed(pick).as_ptr())
            .collect();
        assert_eq!(reached.len(), DICOM_SEEDS.len());
    }
}
