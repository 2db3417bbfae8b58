//! Bytes from a file, a drop or a paste → a decoded image, or a typed error that says why not.
//! PNG and JPEG go through the `image` crate; DICOM (recognised by its content, not its name)
//! through [`dicom`], which also returns a header summary.

pub mod dicom;
mod dicom_lengths;
mod error;
mod raster;

pub use error::{DecodeError, FileError};
pub use raster::MAX_PIXELS;

use dicom::DicomInfo;
use image::DynamicImage;

/// A decoded image and, for a DICOM file, what its header says.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub image: DynamicImage,
    pub dicom: Option<DicomInfo>,
    /// Decoding changed the file's stored pixels: turned as its EXIF orientation says (which
    /// Firefox ignores in a PNG) or 16-bit values stretched to their range. A page showing the
    /// file itself would not show what was analysed.
    pub differs_from_file: bool,
}

/// Files above this size are refused before they are read: a radiograph at the 50-megapixel
/// limit is at most 100 MB even uncompressed (16-bit DICOM), and a browser tab holds the whole
/// file in memory beside its decoded pixels.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Refuses a file of `bytes` bytes above [`MAX_FILE_BYTES`] (call it before reading the file).
pub fn check_file_size(bytes: u64) -> Result<(), DecodeError> {
    if bytes > MAX_FILE_BYTES {
        return Err(DecodeError::FileTooLarge {
            megabytes: bytes as f64 / (1 << 20) as f64,
        });
    }
    Ok(())
}

/// Decodes PNG, JPEG (8 or 16-bit, grayscale or colour) or DICOM from memory.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    check_file_size(bytes.len() as u64)?;
    if dicom::is_dicom(bytes) {
        let (image, info) = dicom::decode(bytes)?;
        return Ok(Decoded {
            image,
            dicom: Some(info),
            differs_from_file: false,
        });
    }
    let (image, differs_from_file) = raster::decode(bytes)?;
    Ok(Decoded {
        image,
        dicom: None,
        differs_from_file,
    })
}

/// Reads and decodes an image file.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_file(path: &std::path::Path) -> Result<Decoded, FileError> {
    check_file_size(std::fs::metadata(path)?.len())?;
    Ok(decode(&std::fs::read(path)?)?)
}

/// [`decode`] without the DICOM summary.
pub fn image_from_bytes(bytes: &[u8]) -> Result<DynamicImage, DecodeError> {
    decode(bytes).map(|d| d.image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageFormat;
    use std::io::Cursor;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::GrayImage::from_fn(width, height, |x, y| image::Luma([(x + y) as u8]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    /// A baseline JPEG made by the `image` crate's encoder (a grey ramp with some texture).
    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img =
            image::GrayImage::from_fn(width, height, |x, y| image::Luma([(x * 3 + y * y) as u8]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
            .unwrap();
        out
    }

    #[test]
    fn decodes_png() {
        let img = image_from_bytes(&png(10, 7)).unwrap();
        assert_eq!((img.width(), img.height()), (10, 7));
    }

    #[test]
    fn files_above_the_byte_budget_are_refused_before_reading() {
        assert_eq!(check_file_size(MAX_FILE_BYTES), Ok(()));
        let err = check_file_size(700 << 20).unwrap_err();
        assert_eq!(err.to_string(), "the file is 700 MB; the limit is 256 MB");
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
        // The first bytes of an iPhone photo (HEIC) and of a JPEG 2000 file, each named.
        for (head, format) in [
            (&b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"[..], "HEIF/HEIC"),
            (b"\0\0\0\x0CjP  \r\n\x87\n\0\0\0\x14ftypjp2 ", "JPEG 2000"),
            (b"\xFF\x4F\xFF\x51\0\x2F\0\0", "JPEG 2000"),
        ] {
            assert_eq!(
                image_from_bytes(head),
                Err(DecodeError::Unsupported(format.into()))
            );
        }
        let bytes = png(64, 64);
        let truncated = &bytes[..bytes.len() / 2];
        assert!(matches!(
            image_from_bytes(truncated),
            Err(DecodeError::Corrupt(_))
        ));
        let jpeg = jpeg(64, 48);
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
    }

    /// A 16-bit grey PNG of a 32×8 ramp through 0..=255, each value scaled by `scale`.
    fn png16(scale: impl Fn(u32) -> u16) -> Vec<u8> {
        let ramp = image::ImageBuffer::from_fn(32, 8, |x, y| image::Luma([scale(x * 8 + y)]));
        let mut out = Vec::new();
        DynamicImage::ImageLuma16(ramp)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn sixteen_bit_values_in_fewer_bits_are_stretched_to_the_full_range() {
        let full = |v: u32| (v * 257) as u16;
        let want = decode(&png16(full)).unwrap();
        assert!(
            !want.differs_from_file,
            "a full-range file is left as it is"
        );
        let want = want.image.into_luma16();
        // 12-bit data (largest 4095) and 8-bit data (largest 255) stored in 16 bits.
        let twelve_bit: fn(u32) -> u16 = |v| ((v * 4095 + 127) / 255) as u16;
        let eight_bit: fn(u32) -> u16 = |v| v as u16;
        for (scale, tolerance) in [(twelve_bit, 9), (eight_bit, 0)] {
            let decoded = decode(&png16(scale)).unwrap();
            assert!(decoded.differs_from_file);
            let got = decoded.image.into_luma16();
            for (a, b) in got.pixels().zip(want.pixels()) {
                assert!(a[0].abs_diff(b[0]) <= tolerance, "{} vs {}", a[0], b[0]);
            }
        }
    }

    /// An APP1 segment holding only an EXIF Orientation tag (big-endian TIFF, one IFD entry).
    fn exif_orientation(value: u16) -> Vec<u8> {
        let mut body = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
        body.extend(value.to_be_bytes());
        body.extend([0; 6]); // value padding, then no next IFD
        let mut segment = vec![0xFF, 0xE1];
        segment.extend((body.len() as u16 + 2).to_be_bytes());
        segment.extend(body);
        segment
    }

    #[test]
    fn a_jpeg_is_turned_as_its_exif_orientation_says() {
        let plain = jpeg(64, 48);
        let upright = image_from_bytes(&plain).unwrap();
        // 6: shown a quarter turn clockwise from how it is stored; 3: upside down; 1: as stored.
        for (value, expected) in [
            (6, upright.rotate90()),
            (3, upright.rotate180()),
            (1, upright.clone()),
        ] {
            let turned = [&plain[..2], &exif_orientation(value), &plain[2..]].concat();
            let decoded = decode(&turned).unwrap();
            assert_eq!(decoded.image, expected, "orientation {value}");
            // The app then shows the decoded pixels, not the file, whatever the browser does.
            assert_eq!(decoded.differs_from_file, value != 1, "orientation {value}");
        }
    }

    #[test]
    fn valid_jpegs_the_decoder_cannot_read_are_named_not_called_damaged() {
        // A real baseline JPEG whose frame header is rewritten: its marker to SOF9 (arithmetic
        // coding), or to SOF1 with a sample precision of 12 bits. (Real 12-bit and lossless files: tests/cli.rs.)
        let baseline = jpeg(64, 48);
        let sof = baseline.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let mut arithmetic = baseline.clone();
        arithmetic[sof + 1] = 0xC9;
        let mut twelve_bit = baseline.clone();
        twelve_bit[sof + 1] = 0xC1; // extended: baseline allows only 8 bits
        twelve_bit[sof + 4] = 12;
        for (bytes, coding) in [
            (arithmetic, "arithmetic-coded JPEG"),
            (twelve_bit, "12-bit lossy JPEG (JPEG extended)"),
        ] {
            assert_eq!(
                image_from_bytes(&bytes),
                Err(DecodeError::JpegUnsupported(coding.into()))
            );
        }
    }

    #[test]
    fn a_jpeg_too_small_for_its_declared_size_is_refused() {
        // A real 64×48 JPEG whose frame header is rewritten to 8191×5871 (48 megapixels, under the
        // pixel limit): it cannot hold one bit per 8×8 block, so it is refused before decoding.
        let mut bytes = jpeg(64, 48);
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 5..sof + 7].copy_from_slice(&5871u16.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&8191u16.to_be_bytes());
        match image_from_bytes(&bytes) {
            Err(DecodeError::Corrupt(why)) => assert!(
                why.contains("too small") && why.contains("8191×5871"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
