//! Bytes from a file, a drop or a paste → a decoded image, or a typed error that says why not.
//! PNG and JPEG go through the `image` crate; DICOM (recognised by its content, not its name)
//! through [`crate::dicom`], which also returns a header summary.

use crate::dicom::{self, DicomInfo};
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Images above this many pixels are refused before decoding (a 60-megapixel scan would need
/// gigabytes once decoded, which a browser tab does not have).
pub const MAX_PIXELS: u64 = 50_000_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("the file is empty (0 bytes)")]
    Empty,
    #[error("this is not an image the app can read (expected PNG, JPEG or DICOM)")]
    NotAnImage,
    #[error("{0} images are not supported (use PNG, JPEG or DICOM)")]
    Unsupported(String),
    #[error(
        "the image is {width}×{height} ({megapixels:.0} megapixels); the limit is 50 megapixels"
    )]
    TooLarge {
        width: u32,
        height: u32,
        megapixels: f64,
    },
    #[error("the image file is damaged or truncated: {0}")]
    Corrupt(String),
    #[error(
        "the DICOM pixel data is compressed as {name} ({uid}), which this app cannot decode (supported: uncompressed, RLE Lossless, JPEG baseline/extended/lossless)"
    )]
    DicomTransferSyntax { name: String, uid: String },
    #[error("this DICOM file cannot be analysed: {0}")]
    DicomUnsupported(String),
    #[error("the DICOM file is damaged or truncated: {0}")]
    DicomCorrupt(String),
}

/// A decoded image and, for a DICOM file, what its header says.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub image: DynamicImage,
    pub dicom: Option<DicomInfo>,
}

/// Decodes PNG, JPEG (8 or 16-bit, grayscale or colour) or DICOM from memory.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if dicom::is_dicom(bytes) {
        let (image, info) = dicom::decode(bytes)?;
        return Ok(Decoded {
            image,
            dicom: Some(info),
        });
    }
    raster_from_bytes(bytes).map(|image| Decoded { image, dicom: None })
}

/// [`decode`] without the DICOM summary.
pub fn image_from_bytes(bytes: &[u8]) -> Result<DynamicImage, DecodeError> {
    decode(bytes).map(|d| d.image)
}

fn raster_from_bytes(bytes: &[u8]) -> Result<DynamicImage, DecodeError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::GrayImage::from_fn(width, height, |x, y| image::Luma([(x + y) as u8]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn decodes_png() {
        let img = image_from_bytes(&png(10, 7)).unwrap();
        assert_eq!((img.width(), img.height()), (10, 7));
    }

    #[test]
    fn rejects_bad_inputs_with_typed_errors() {
        assert_eq!(image_from_bytes(&[]), Err(DecodeError::Empty));
        assert_eq!(
            image_from_bytes(b"hello, this is text renamed to .png"),
            Err(DecodeError::NotAnImage)
        );
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert_eq!(
            image_from_bytes(gif),
            Err(DecodeError::Unsupported("GIF".into()))
        );
        let bytes = png(64, 64);
        let truncated = &bytes[..bytes.len() / 2];
        assert!(matches!(
            image_from_bytes(truncated),
            Err(DecodeError::Corrupt(_))
        ));
        let jpeg =
            std::fs::read("../shared/data/chest_xray/test/NORMAL/IM-0001-0001.jpeg").unwrap();
        assert!(image_from_bytes(&jpeg).is_ok());
        let cut = &jpeg[..jpeg.len() / 3];
        assert!(
            matches!(image_from_bytes(cut), Err(DecodeError::Corrupt(_))),
            "a truncated JPEG must be refused"
        );
    }

    #[test]
    fn refuses_huge_images_before_decoding() {
        // A valid PNG header claiming 10000×6000 pixels, no pixel data: refused from the header.
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, 10_000, 6_000);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer.write_chunk(png::chunk::IDAT, &[0x78, 0x9c]).unwrap();
        drop(writer);
        let result = image_from_bytes(&bytes);
        assert!(
            matches!(
                result,
                Err(DecodeError::TooLarge {
                    width: 10_000,
                    height: 6_000,
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(matches!(
            image_from_bytes(&bytes),
            Err(DecodeError::TooLarge {
                width: 10_000,
                height: 6_000,
                ..
            })
        ));
    }
}
