//! PNG and JPEG bytes → an image, with the size limit checked from the header first.

use super::error::DecodeError;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Images above this many pixels are refused before decoding (a 60-megapixel scan would need
/// gigabytes once decoded, which a browser tab does not have).
pub const MAX_PIXELS: u64 = 50_000_000;

/// PNG or JPEG through the `image` crate, refusing huge or cut-off files before decoding. The
/// image comes upright and 16-bit values fill their range; the flag says whether either changed
/// the pixels from the file as stored.
pub fn decode(bytes: &[u8]) -> Result<(DynamicImage, bool), DecodeError> {
    let format = image::guess_format(bytes).map_err(|_| not_an_image(bytes))?;
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
    if format == ImageFormat::Jpeg {
        check_jpeg_coding(bytes)?;
    }
    let reader = || ImageReader::with_format(Cursor::new(bytes), format);
    if let Some((width @ 0, height) | (width, height @ 0)) = png_header_size(bytes) {
        // The PNG decoder rejects a 0-pixel header as a format error; say what it is.
        return Err(DecodeError::NoPixels { width, height });
    }
    let (width, height) = reader().into_dimensions().map_err(corrupt)?;
    let pixels = width as u64 * height as u64;
    if pixels == 0 {
        return Err(DecodeError::NoPixels { width, height });
    }
    if pixels > MAX_PIXELS {
        return Err(DecodeError::TooLarge {
            width,
            height,
            megapixels: pixels as f64 / 1e6,
        });
    }
    if format == ImageFormat::Jpeg && !jpeg_can_fill(bytes.len(), width, height) {
        return Err(DecodeError::Corrupt(format!(
            "the JPEG is too small ({} bytes) for the {width}×{height} pixels its header declares",
            bytes.len()
        )));
    }
    let mut limits = Limits::default();
    // 16-bit RGBA at the pixel limit, plus slack for the decoder's own buffers.
    limits.max_alloc = Some(MAX_PIXELS * 8 + (64 << 20));
    let mut decoder = reader().into_decoder().map_err(corrupt)?;
    limits.reserve(decoder.total_bytes()).map_err(corrupt)?;
    decoder.set_limits(limits).map_err(corrupt)?;
    // Browsers and viewers show a photo turned as its EXIF Orientation says (phones and some
    // exports write one): the model, and the heatmap drawn over the browser's picture, must see
    // the image the same way up.
    let orientation = decoder.orientation().map_err(corrupt)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    let stretched = stretch_to_stored_bits(&mut image);
    Ok((image, stretched || orientation != Orientation::NoTransforms))
}

/// Scales a 16-bit image whose values all fit in fewer bits (12-bit detector data stored in 16
/// bits, as DICOM → PNG conversions write) to the full 16-bit range, as DICOM's Bits Stored
/// would: read as 16-bit it is nearly black and unlike any X-ray. The stored bits are the fewest
/// (at least 8) that hold the largest colour value; alpha is left alone. Returns whether it
/// scaled.
fn stretch_to_stored_bits(image: &mut DynamicImage) -> bool {
    let (samples, channels, colours): (&mut [u16], usize, usize) = match image {
        DynamicImage::ImageLuma16(buffer) => (&mut **buffer, 1, 1),
        DynamicImage::ImageLumaA16(buffer) => (&mut **buffer, 2, 1),
        DynamicImage::ImageRgb16(buffer) => (&mut **buffer, 3, 3),
        DynamicImage::ImageRgba16(buffer) => (&mut **buffer, 4, 3),
        _ => return false,
    };
    let largest = samples
        .chunks_exact(channels)
        .flat_map(|pixel| &pixel[..colours])
        .copied()
        .max()
        .unwrap_or(0);
    let bits = (16 - largest.leading_zeros()).max(8);
    if largest == 0 || bits == 16 {
        return false;
    }
    let top = (1u32 << bits) - 1;
    for pixel in samples.chunks_exact_mut(channels) {
        for value in &mut pixel[..colours] {
            *value = ((*value as u32 * 65535 + top / 2) / top) as u16;
        }
    }
    true
}

fn corrupt(error: image::ImageError) -> DecodeError {
    DecodeError::Corrupt(error.to_string())
}

/// Refuses, by name, a valid JPEG coded in a way the `image` crate's decoder lacks (it calls such
/// a file damaged, or misreads its frame header): 12-bit lossy, lossless, arithmetic-coded or
/// hierarchical. jpeg-decoder, the DICOM path's decoder, reads the headers up to the frame's;
/// whatever else it cannot read is left to the `image` crate, which may decode it.
fn check_jpeg_coding(bytes: &[u8]) -> Result<(), DecodeError> {
    use jpeg_decoder::{CodingProcess, Error, UnsupportedFeature as Feature};
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    let coding = match decoder.read_info() {
        Err(Error::Unsupported(
            feature @ (Feature::SamplePrecision(_)
            | Feature::ArithmeticEntropyCoding
            | Feature::Hierarchical),
        )) => jpeg_feature_name(feature),
        Ok(())
            if decoder
                .info()
                .is_some_and(|info| info.coding_process == CodingProcess::Lossless) =>
        {
            "lossless JPEG".to_string()
        }
        _ => return Ok(()),
    };
    Err(DecodeError::JpegUnsupported(coding))
}

/// What a JPEG that jpeg-decoder cannot read is called, for messages that say what to export
/// instead (plain JPEG files and DICOM JPEG frames).
pub(crate) fn jpeg_feature_name(feature: jpeg_decoder::UnsupportedFeature) -> String {
    use jpeg_decoder::UnsupportedFeature as Feature;
    match feature {
        // JPEG extended (process 4): what most 12-bit lossy radiographs use.
        Feature::SamplePrecision(12) => "12-bit lossy JPEG (JPEG extended)".to_string(),
        Feature::SamplePrecision(bits) => format!("{bits}-bit JPEG"),
        Feature::ArithmeticEntropyCoding => "arithmetic-coded JPEG".to_string(),
        Feature::Hierarchical => "hierarchical JPEG".to_string(),
        feature => format!("a JPEG feature this app's decoder lacks ({feature:?})"),
    }
}

/// Whether a JPEG of `size` bytes can hold a `width`×`height` frame: every 8×8 block of the
/// first component takes at least one bit in a Huffman-coded scan (its DC code). A header that
/// declares more blocks than that lies; the decoder would otherwise fill the whole frame from
/// nothing (an 8×8 JPEG declaring 8191×5871 pixels took 0.5–0.7 s, over 5 s under the fuzzer).
/// A lossless JPEG needs at least a bit a pixel, so the bound holds for it too.
pub(crate) fn jpeg_can_fill(size: usize, width: u32, height: u32) -> bool {
    let blocks = (width as u64).div_ceil(8) * (height as u64).div_ceil(8);
    size as u64 * 8 >= blocks
}

/// Why bytes that no image decoder recognises are not an image, as precisely as their first
/// bytes tell: a zip archive (a `.keras` model or a folder someone zipped), a phone's HEIF
/// photo, a JPEG 2000 export, an SVG drawing.
fn not_an_image(bytes: &[u8]) -> DecodeError {
    if bytes.starts_with(b"PK\x03\x04") {
        return DecodeError::Archive;
    }
    // An ISO media file's `ftyp` box names its brand; these are HEIF's (iPhones save HEIC).
    if bytes.get(4..8) == Some(b"ftyp")
        && matches!(
            bytes.get(8..12),
            Some(b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1")
        )
    {
        return DecodeError::Unsupported("HEIF/HEIC".into());
    }
    // The JP2 signature box, or a bare JPEG 2000 codestream (SOC then SIZ markers).
    if bytes.starts_with(b"\0\0\0\x0CjP  \r\n\x87\n")
        || bytes.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
    {
        return DecodeError::Unsupported("JPEG 2000".into());
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let text = head.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with("<svg") || (text.starts_with("<?xml") && text.contains("<svg")) {
        return DecodeError::Unsupported("SVG (vector)".into());
    }
    DecodeError::NotAnImage
}

/// Width and height from a PNG's IHDR chunk (the first, by the PNG specification).
fn png_header_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    Some((be(16), be(20)))
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
