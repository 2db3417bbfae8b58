//! Why bytes could not become an image.

#[derive(Debug, Clone, thiserror::Error, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum DecodeError {
    #[error("the file is empty (0 bytes)")]
    Empty,
    #[error("the file is {megabytes:.0} MB; the limit is 256 MB")]
    FileTooLarge { megabytes: f64 },
    #[error("this is not an image the app can read (expected PNG, JPEG or DICOM)")]
    NotAnImage,
    #[error("{0} images are not supported (use PNG, JPEG or DICOM)")]
    Unsupported(String),
    #[error(
        "this is a zip archive, not an image: unpack it and use the X-rays inside (PNG, JPEG or DICOM)"
    )]
    Archive,
    #[error("the image has no pixels ({width}×{height})")]
    NoPixels { width: u32, height: u32 },
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
        "the image is compressed as {0}, which this app cannot decode; save it as an 8-bit JPEG or as PNG"
    )]
    JpegUnsupported(String),
    #[error(
        "the DICOM pixel data is compressed as {name} ({uid}), which this app cannot decode (supported: uncompressed, RLE Lossless, 8-bit JPEG baseline/extended, JPEG lossless)"
    )]
    DicomTransferSyntax { name: String, uid: String },
    #[error("this DICOM file cannot be analysed: {0}")]
    DicomUnsupported(String),
    #[error("the DICOM file is damaged or truncated: {0}")]
    DicomCorrupt(String),
}

/// Why an image file on disk could not be used (the CLI, evaluation, training data).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the file: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}
