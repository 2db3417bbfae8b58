//! PNG and JPEG bytes → an image, with the size limit checked from the header first.

use super::error::DecodeError;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Images above this many pixels are refused before decoding (a 60-megapixel scan would need
/// gigabytes once decoded, which a browser tab does not have).
pub const MAX_PIXELS: u64 = 50_000_000;

/// PNG or JPEG through the `image` crate, refusing huge or cut-off files before decoding.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, DecodeError> {
    let format = image::guess_format(bytes).map_err(|_| DecodeError::NotAnImage)?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg) {
        return Err(DecodeError::Unsupported(
            format!("{format:?}").to_uppercase(),
        ));
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The JPEG decoder pads a cut-off file with grey instead of failing; refuse it here.
        return Err(DecodeError::Corrupt(
            "the JPEG ends before its end-of-image marker".into(),
        ));
    }
    let reader = || ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader()
        .into_dimensions()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    let pixels = width as u64 * height as u64;
    if pixels > MAX_PIXELS {
        return Err(DecodeError::TooLarge {
            width,
            height,
            megapixels: pixels as f64 / 1e6,
        });
    }
    let mut limits = Limits::default();
    // 16-bit RGBA at the pixel limit, plus slack for the decoder's own buffers.
    limits.max_alloc = Some(MAX_PIXELS * 8 + (64 << 20));
    let mut reader = reader();
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))
}

/// A complete JPEG has an end-of-image marker (FF D9) after its last start-of-scan (FF DA).
/// Inside entropy-coded data every FF byte is stuffed or a restart marker, so neither pattern
/// can appear by accident; an embedded thumbnail's own EOI comes before the main scan.
pub(crate) fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}
