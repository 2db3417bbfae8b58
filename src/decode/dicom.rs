//! DICOM (`.dcm`, or any file with `DICM` at byte 128) → a grayscale image the rest of the
//! pipeline treats like a PNG, plus a header summary with warnings.
//!
//! dicom-rs parses the file and decodes compressed frames (RLE, JPEG); the display chain from
//! stored values to grey levels is done here, in the order of DICOM PS3.3 C.11 and with the
//! formulas it states: mask to Bits Stored → Modality LUT (Rescale Slope/Intercept) → VOI
//! (VOI LUT table, else Window Center/Width, else min–max of the frame) → MONOCHROME1 inversion.
//!
//! Patient-identifying attributes (name, ID, birth date, accession number, institution) are
//! never read: only the attributes listed in [`DicomInfo`] and the imaging ones are accessed.

use super::dicom_lengths::{self, Encoding};
use super::error::DecodeError;
use super::raster::{MAX_PIXELS, jpeg_can_fill, jpeg_feature_name, jpeg_is_complete};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, FileMetaTable, InMemDicomObject};
use dicom_pixeldata::{PixelDecoder, Rescale, VoiLutFunction, WindowLevel};
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use image::{DynamicImage, ImageBuffer, Luma};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::io::Read;

/// The preamble is 128 bytes; the magic `DICM` follows it.
const PREAMBLE: usize = 128;

/// What the header says about the image (never who the patient is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DicomInfo {
    pub modality: Option<String>,
    pub view_position: Option<String>,
    pub body_part: Option<String>,
    /// As stored (DICOM DA, `YYYYMMDD`).
    pub study_date: Option<String>,
    pub frames: u32,
    /// The transfer syntax's name, e.g. "Explicit VR Little Endian".
    pub transfer_syntax: String,
    pub warnings: Vec<DicomWarning>,
}

/// Reasons to read a result with more caution. Serialised as English sentences in JSON (the
/// CLI's output); as data in binary formats (the browser's analysis worker, whose page
/// translates them from the variant).
#[derive(Debug, Clone, PartialEq)]
pub enum DicomWarning {
    /// Modality is not CR/DX/DR (the value, or `None` when the header does not say).
    NotRadiograph(Option<String>),
    /// ViewPosition is lateral (LL, RL, LATERAL).
    Lateral(String),
    /// Only the first of this many frames was analysed.
    MultiFrame(u32),
}

impl std::fmt::Display for DicomWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DicomWarning::NotRadiograph(m) => write!(
                f,
                "modality is {}: the model was trained on frontal chest radiographs (CR/DX); this result may be meaningless",
                m.as_deref().unwrap_or("not stated")
            ),
            DicomWarning::Lateral(v) => write!(
                f,
                "view position is {v} (lateral): the model was trained on frontal (PA/AP) chest radiographs; this result may be meaningless"
            ),
            DicomWarning::MultiFrame(n) => write!(
                f,
                "the file has {n} frames; only the first frame was analysed"
            ),
        }
    }
}

/// [`DicomWarning`] as data.
#[derive(Serialize, Deserialize)]
enum WarningData {
    NotRadiograph(Option<String>),
    Lateral(String),
    MultiFrame(u32),
}

impl Serialize for DicomWarning {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.collect_str(self);
        }
        match self.clone() {
            DicomWarning::NotRadiograph(m) => WarningData::NotRadiograph(m),
            DicomWarning::Lateral(v) => WarningData::Lateral(v),
            DicomWarning::MultiFrame(n) => WarningData::MultiFrame(n),
        }
        .serialize(s)
    }
}

/// Only the data form reads back: a sentence is for people.
impl<'de> Deserialize<'de> for DicomWarning {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            return Err(serde::de::Error::custom(
                "DICOM warnings read back only from a binary format",
            ));
        }
        Ok(match WarningData::deserialize(d)? {
            WarningData::NotRadiograph(m) => DicomWarning::NotRadiograph(m),
            WarningData::Lateral(v) => DicomWarning::Lateral(v),
            WarningData::MultiFrame(n) => DicomWarning::MultiFrame(n),
        })
    }
}

/// True when `bytes` is a DICOM Part 10 file (preamble, then `DICM`), whatever its name.
pub fn is_dicom(bytes: &[u8]) -> bool {
    bytes.get(PREAMBLE..PREAMBLE + 4) == Some(b"DICM")
}

/// Decodes the first frame of a DICOM file into an 8-bit (Bits Stored ≤ 8) or 16-bit
/// grayscale image, with its header summary.
pub fn decode(bytes: &[u8]) -> Result<(DynamicImage, DicomInfo), DecodeError> {
    if !is_dicom(bytes) {
        return Err(DecodeError::DicomCorrupt(
            "no DICM marker at byte 128".into(),
        ));
    }
    let body = &bytes[PREAMBLE..];
    // No declared length may run past the end of the file (dicom-rs allocates it first).
    dicom_lengths::check_meta(&body[4..]).map_err(|e| corrupt("file meta information", e))?;
    // The transfer syntax first, so that an unsupported one is named even when the data set
    // itself could not be read (e.g. deflated). The data set is whatever dicom-rs' meta reading
    // leaves unread, not the offset its `information_group_length` gives: that is recomputed
    // from the elements it keeps, so an element it drops once moved the offset and the walk
    // below checked other bytes than dicom-rs read (a hidden 3.7 GB length: 12.6 s, 3.7 GB).
    let mut data_set = body;
    let meta = FileMetaTable::from_reader(&mut data_set)
        .map_err(|e| corrupt("file meta information", e))?;
    let uid = meta.transfer_syntax().to_string();
    let ts = TransferSyntaxRegistry
        .get(&uid)
        .ok_or_else(|| DecodeError::DicomTransferSyntax {
            name: "unknown transfer syntax".into(),
            uid: uid.clone(),
        })?;
    if !ts.can_decode_all() {
        return Err(DecodeError::DicomTransferSyntax {
            name: ts.name().to_string(),
            uid,
        });
    }
    let uid_text = uid.trim_end_matches('\0');
    let encoding = Encoding {
        explicit_vr: uid_text != IMPLICIT_VR_LE,
        big_endian: uid_text == EXPLICIT_VR_BE,
    };
    // Deflated data sets are inflated here, once for the walk and dicom-rs alike (111 MB at most).
    let (inflated, explicit_le);
    let (checked, read_as) = if uid_text == DEFLATED_EXPLICIT_VR_LE {
        inflated = inflate_bounded(data_set)?;
        explicit_le = EXPLICIT_VR_LITTLE_ENDIAN.erased();
        (inflated.as_slice(), &explicit_le)
    } else {
        (data_set, ts)
    };
    dicom_lengths::check(checked, encoding, None).map_err(|e| corrupt("data set", e))?;
    let obj = InMemDicomObject::read_dataset_with_ts(checked, read_as)
        .map_err(|e| corrupt("data set", e))?
        .with_exact_meta(meta);

    let info = summary(&obj, ts.name());
    let header = ImageHeader::read(&obj)?;
    let pixels = header.columns as u64 * header.rows as u64;
    if pixels > MAX_PIXELS {
        return Err(DecodeError::TooLarge {
            width: header.columns,
            height: header.rows,
            megapixels: pixels as f64 / 1e6,
        });
    }
    if ts.is_encapsulated_pixel_data() {
        check_encapsulated(&obj, &uid, &header, info.frames)?;
    } else {
        header.check_native_length(&obj)?;
    }

    let decoded = obj
        .decode_pixel_data_frame(0)
        .map_err(|e| corrupt("pixel data", e))?;
    if (decoded.columns(), decoded.rows()) != (header.columns, header.rows) {
        return Err(DecodeError::DicomCorrupt(
            "the decoded frame's size differs from Rows/Columns".into(),
        ));
    }
    let rescale = decoded
        .rescale()
        .ok()
        .and_then(|r| r.first().copied())
        .unwrap_or(Rescale {
            slope: 1.0,
            intercept: 0.0,
        });
    // One float buffer, transformed in place (at 50 MP it is 400 MB; a tab has little more).
    let mut grey: Vec<f64> = stored_values(decoded.data(), &header)?
        .map(|v| modality_lut(v, rescale))
        .collect();

    let voi = if let Some(lut) = decoded
        .voi_lut_sequence()
        .ok()
        .flatten()
        .and_then(|s| s.first())
        .filter(|l| !l.data.is_empty())
    {
        Voi::Table(VoiTable {
            first: lut.min_pixel_value,
            bits: lut.bits_stored,
            data: &lut.data,
        })
    } else if let Some(window) = decoded
        .window()
        .ok()
        .flatten()
        .and_then(|w| w.first().copied())
        .filter(|w| w.width > 0.0)
    {
        let function = decoded
            .voi_lut_function()
            .ok()
            .flatten()
            .and_then(|f| f.first().copied())
            .unwrap_or_default();
        Voi::Window(window, function)
    } else {
        Voi::MinMax
    };
    apply_voi(&mut grey, &voi);
    if header.monochrome1 {
        invert(&mut grey);
    }
    Ok((
        to_image(&grey, header.columns, header.rows, header.bits_stored > 8),
        info,
    ))
}

const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";
const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";

/// The most a deflated data set may inflate to: one 50-megapixel 16-bit frame and 16 MB of
/// header. Beyond it the file is refused before anything is inflated into memory (a few hundred
/// kilobytes can inflate to gigabytes).
pub const MAX_INFLATED_BYTES: u64 = 2 * MAX_PIXELS + (16 << 20);

/// Inflates `deflated` once it is known to stay within [`MAX_INFLATED_BYTES`] (counted first
/// without keeping anything, so a bomb costs no memory). A damaged deflate stream is refused:
/// the bytes an inflater yields before the error depend on how it is read (a 57 kB file once
/// hid a 3.2 GB element behind the damage).
fn inflate_bounded(deflated: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let inflater = || flate2::read::DeflateDecoder::new(deflated).take(MAX_INFLATED_BYTES + 1);
    let size = std::io::copy(&mut inflater(), &mut std::io::sink())
        .map_err(|e| corrupt("deflated data set", e))?;
    if size > MAX_INFLATED_BYTES {
        return Err(DecodeError::DicomUnsupported(format!(
            "its deflated data set inflates to more than {} MB (the limit: one 50-megapixel 16-bit frame)",
            MAX_INFLATED_BYTES >> 20
        )));
    }
    let mut inflated = Vec::with_capacity(size as usize);
    let _ = inflater().read_to_end(&mut inflated);
    Ok(inflated)
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::DicomCorrupt(format!("{what}: {e}"))
}

fn text(obj: &DefaultDicomObject, tag: Tag) -> Option<String> {
    let value = obj.element_opt(tag).ok()??.to_str().ok()?;
    let value = value.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!value.is_empty()).then(|| value.to_string())
}

fn int(obj: &DefaultDicomObject, tag: Tag) -> Option<i64> {
    obj.element_opt(tag).ok()??.to_int::<i64>().ok()
}

/// The header summary and its warnings (only non-identifying attributes are read).
fn summary(obj: &DefaultDicomObject, transfer_syntax: &str) -> DicomInfo {
    let modality = text(obj, tags::MODALITY);
    let view_position = text(obj, tags::VIEW_POSITION);
    let frames = int(obj, tags::NUMBER_OF_FRAMES)
        .filter(|&n| n >= 1)
        .unwrap_or(1)
        .min(u32::MAX as i64) as u32;
    let mut warnings = Vec::new();
    if !matches!(
        modality.as_deref().map(str::to_ascii_uppercase).as_deref(),
        Some("CR" | "DX" | "DR")
    ) {
        warnings.push(DicomWarning::NotRadiograph(modality.clone()));
    }
    if let Some(view) = view_position
        .as_deref()
        .filter(|v| matches!(v.to_ascii_uppercase().as_str(), "LL" | "RL" | "LATERAL"))
    {
        warnings.push(DicomWarning::Lateral(view.to_string()));
    }
    if frames > 1 {
        warnings.push(DicomWarning::MultiFrame(frames));
    }
    DicomInfo {
        modality,
        view_position,
        body_part: text(obj, tags::BODY_PART_EXAMINED),
        study_date: text(obj, tags::STUDY_DATE),
        frames,
        transfer_syntax: transfer_syntax.to_string(),
        warnings,
    }
}

/// The imaging attributes this module relies on, checked before any pixel is decoded.
struct ImageHeader {
    rows: u32,
    columns: u32,
    bits_allocated: u16,
    bits_stored: u16,
    high_bit: u16,
    signed: bool,
    monochrome1: bool,
}

impl ImageHeader {
    fn read(obj: &DefaultDicomObject) -> Result<Self, DecodeError> {
        let unsupported = |why: String| Err(DecodeError::DicomUnsupported(why));
        if obj.element_opt(tags::PIXEL_DATA).ok().flatten().is_none() {
            return unsupported(
                "the file holds no image (no Pixel Data), e.g. a report or a presentation state"
                    .into(),
            );
        }
        let required = |tag: Tag, name: &str| {
            int(obj, tag)
                .ok_or_else(|| DecodeError::DicomCorrupt(format!("{name} is missing or invalid")))
        };
        let rows = required(tags::ROWS, "Rows")?;
        let columns = required(tags::COLUMNS, "Columns")?;
        if rows < 1 || columns < 1 || rows > u16::MAX as i64 || columns > u16::MAX as i64 {
            return Err(DecodeError::DicomCorrupt(format!(
                "invalid image size {columns}×{rows}"
            )));
        }
        let samples = int(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
        let photometric = text(obj, tags::PHOTOMETRIC_INTERPRETATION)
            .unwrap_or_default()
            .to_ascii_uppercase();
        if samples != 1 || !matches!(photometric.as_str(), "MONOCHROME1" | "MONOCHROME2") {
            return unsupported(format!(
                "Photometric Interpretation {} with {samples} samples per pixel (only grayscale MONOCHROME1/MONOCHROME2 radiographs are supported)",
                if photometric.is_empty() {
                    "not stated"
                } else {
                    &photometric
                }
            ));
        }
        let bits_allocated = required(tags::BITS_ALLOCATED, "Bits Allocated")?;
        if bits_allocated != 8 && bits_allocated != 16 {
            return unsupported(format!(
                "Bits Allocated {bits_allocated} (only 8 and 16 are supported)"
            ));
        }
        let bits_stored = int(obj, tags::BITS_STORED).unwrap_or(bits_allocated);
        let high_bit = int(obj, tags::HIGH_BIT).unwrap_or(bits_stored - 1);
        if bits_stored < 1
            || bits_stored > bits_allocated
            || high_bit < bits_stored - 1
            || high_bit >= bits_allocated
        {
            return Err(DecodeError::DicomCorrupt(format!(
                "inconsistent Bits Allocated/Stored/High Bit ({bits_allocated}/{bits_stored}/{high_bit})"
            )));
        }
        Ok(Self {
            rows: rows as u32,
            columns: columns as u32,
            bits_allocated: bits_allocated as u16,
            bits_stored: bits_stored as u16,
            high_bit: high_bit as u16,
            signed: int(obj, tags::PIXEL_REPRESENTATION) == Some(1),
            monochrome1: photometric == "MONOCHROME1",
        })
    }

    fn frame_bytes(&self) -> usize {
        self.rows as usize * self.columns as usize * (self.bits_allocated as usize / 8)
    }

    /// Uncompressed pixel data must hold at least one whole frame (a cut-off file would
    /// otherwise be reported by the decoder as a confusing "frame out of range").
    fn check_native_length(&self, obj: &DefaultDicomObject) -> Result<(), DecodeError> {
        let len = obj
            .element_opt(tags::PIXEL_DATA)
            .ok()
            .flatten()
            .and_then(|e| e.value().primitive().map(|p| p.calculate_byte_len()))
            .unwrap_or(0);
        if len < self.frame_bytes() {
            return Err(DecodeError::DicomCorrupt(format!(
                "the pixel data has {len} bytes; one {}×{} frame needs {}",
                self.columns,
                self.rows,
                self.frame_bytes()
            )));
        }
        Ok(())
    }
}

/// dicom-rs 0.10's RLE and JPEG adapters index without bounds checks on some malformed frames
/// (a cut-off RLE segment, a JPEG larger than Rows/Columns), and a panic would abort the whole
/// page in wasm; so the first frame's compressed data is checked here before it is decoded.
fn check_encapsulated(
    obj: &DefaultDicomObject,
    uid: &str,
    header: &ImageHeader,
    frames: u32,
) -> Result<(), DecodeError> {
    let fragments = obj
        .element_opt(tags::PIXEL_DATA)
        .ok()
        .flatten()
        .and_then(|e| e.value().fragments())
        .unwrap_or(&[]);
    let first: std::borrow::Cow<[u8]> = match fragments {
        [] => {
            return Err(DecodeError::DicomCorrupt(
                "the compressed pixel data has no fragments".into(),
            ));
        }
        [one, ..] if fragments.len() == 1 || fragments.len() == frames as usize => {
            one.as_slice().into()
        }
        _ if frames == 1 => fragments.concat().into(),
        // Several frames spread over several fragments each: left to the decoder.
        _ => return Ok(()),
    };
    match uid {
        "1.2.840.10008.1.2.5" => check_rle(&first, header),
        // JPEG baseline, extended, lossless (process 14) and lossless SV1.
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.57"
        | "1.2.840.10008.1.2.4.70" => check_jpeg(&first, header),
        _ => Ok(()),
    }
}

/// An RLE frame (PS3.5 G): a 64-byte header of segment count and offsets, then one PackBits
/// segment per byte of sample, each decoding to at least Rows × Columns bytes.
fn check_rle(frame: &[u8], header: &ImageHeader) -> Result<(), DecodeError> {
    let bad = |why: String| Err(DecodeError::DicomCorrupt(format!("RLE frame: {why}")));
    if frame.len() < 64 {
        return bad(format!(
            "{} bytes, shorter than its 64-byte header",
            frame.len()
        ));
    }
    let word = |i: usize| {
        u32::from_le_bytes([
            frame[4 * i],
            frame[4 * i + 1],
            frame[4 * i + 2],
            frame[4 * i + 3],
        ]) as usize
    };
    let segments = word(0);
    let expected = header.bits_allocated as usize / 8;
    if segments != expected {
        return bad(format!("{segments} segments where {expected} are expected"));
    }
    let pixels = header.rows as usize * header.columns as usize;
    for s in 0..segments {
        let (start, end) = (
            word(1 + s),
            if s + 1 < segments {
                word(2 + s)
            } else {
                frame.len()
            },
        );
        if start < 64 || start > end || end > frame.len() {
            return bad("segment offsets out of range".into());
        }
        let n = packbits_len(&frame[start..end]);
        if n < pixels {
            return bad(format!(
                "a segment decodes to {n} bytes, the image has {pixels} pixels (truncated?)"
            ));
        }
    }
    Ok(())
}

/// How many bytes a PackBits segment decodes to, counting complete runs only.
fn packbits_len(mut data: &[u8]) -> usize {
    let mut n = 0;
    while let Some((&h, rest)) = data.split_first() {
        match h {
            0..=127 => {
                let k = h as usize + 1;
                if rest.len() < k {
                    break;
                }
                n += k;
                data = &rest[k..];
            }
            128 => data = rest,
            _ => {
                if rest.is_empty() {
                    break;
                }
                n += 257 - h as usize;
                data = &rest[1..];
            }
        }
    }
    n
}

/// A JPEG frame must be complete and match Rows/Columns and the bit depth.
fn check_jpeg(frame: &[u8], header: &ImageHeader) -> Result<(), DecodeError> {
    if !jpeg_is_complete(frame) {
        return Err(DecodeError::DicomCorrupt(
            "the JPEG frame ends before its end-of-image marker".into(),
        ));
    }
    let mut decoder = jpeg_decoder::Decoder::new(frame);
    decoder.read_info().map_err(|e| match e {
        // A valid frame the decoder lacks a feature for is not damage: say what to export instead.
        jpeg_decoder::Error::Unsupported(feature) => unsupported_jpeg(feature),
        e => corrupt("JPEG frame", e),
    })?;
    let info = decoder
        .info()
        .ok_or_else(|| DecodeError::DicomCorrupt("JPEG frame: no header".into()))?;
    if (info.width as u32, info.height as u32) != (header.columns, header.rows) {
        return Err(DecodeError::DicomCorrupt(format!(
            "the JPEG frame is {}×{} but Rows/Columns say {}×{}",
            info.width, info.height, header.columns, header.rows
        )));
    }
    if !jpeg_can_fill(frame.len(), header.columns, header.rows) {
        // The decoder would fill the frame from nothing (1.05 s for 7000×7000 in `predict`).
        return Err(DecodeError::DicomCorrupt(format!(
            "the JPEG frame is too small ({} bytes) for the {}×{} pixels it declares",
            frame.len(),
            header.columns,
            header.rows
        )));
    }
    match (info.pixel_format, header.bits_allocated) {
        (jpeg_decoder::PixelFormat::L8, 8) | (jpeg_decoder::PixelFormat::L16, 16) => Ok(()),
        (format, bits) => Err(DecodeError::DicomUnsupported(format!(
            "a {format:?} JPEG frame with Bits Allocated {bits}"
        ))),
    }
}

fn unsupported_jpeg(feature: jpeg_decoder::UnsupportedFeature) -> DecodeError {
    DecodeError::DicomUnsupported(format!(
        "its pixels are {}; export the image uncompressed, as JPEG lossless or as PNG",
        jpeg_feature_name(feature)
    ))
}

/// Native-endian decoded samples → stored values: only Bits Stored bits, ending at High Bit,
/// are the value (the others may hold overlays or garbage), sign-extended when signed.
/// dicom-pixeldata's raw conversion skips this masking, hence doing it here.
fn stored_values<'a>(
    data: &'a [u8],
    header: &ImageHeader,
) -> Result<Box<dyn Iterator<Item = i32> + 'a>, DecodeError> {
    let n = header.rows as usize * header.columns as usize;
    if data.len() < header.frame_bytes() {
        return Err(DecodeError::DicomCorrupt(format!(
            "the decoded frame has {} bytes, expected {}",
            data.len(),
            header.frame_bytes()
        )));
    }
    let (shift, bits, signed) = (
        header.high_bit + 1 - header.bits_stored,
        header.bits_stored,
        header.signed,
    );
    Ok(if header.bits_allocated == 8 {
        Box::new(
            data[..n]
                .iter()
                .map(move |&b| mask(b as u32, shift, bits, signed)),
        )
    } else {
        Box::new(
            data[..n * 2]
                .chunks_exact(2)
                .map(move |c| mask(u16::from_ne_bytes([c[0], c[1]]) as u32, shift, bits, signed)),
        )
    })
}

fn mask(raw: u32, shift: u16, bits: u16, signed: bool) -> i32 {
    let v = (raw >> shift) & ((1u32 << bits) - 1);
    if signed && v & (1 << (bits - 1)) != 0 {
        v as i32 - (1i32 << bits)
    } else {
        v as i32
    }
}

/// Modality LUT (PS3.3 C.11.1): output = stored × slope + intercept.
fn modality_lut(stored: i32, r: Rescale) -> f64 {
    stored as f64 * r.slope + r.intercept
}

/// A VOI LUT (dicom-pixeldata parses it but does not export the type's name).
struct VoiTable<'a> {
    /// The stored value mapped to the first entry.
    first: i32,
    /// Bits per entry.
    bits: u8,
    data: &'a [u16],
}

enum Voi<'a> {
    Table(VoiTable<'a>),
    Window(WindowLevel, VoiLutFunction),
    MinMax,
}

/// VOI transform, in place, to grey levels in [0, 1].
fn apply_voi(values: &mut [f64], voi: &Voi) {
    match voi {
        Voi::Table(lut) => values.iter_mut().for_each(|x| *x = voi_table(*x, lut)),
        Voi::Window(w, f) => values
            .iter_mut()
            .for_each(|x| *x = window(*x, w.center, w.width, *f)),
        Voi::MinMax => {
            let (lo, hi) = values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            // A flat image stays black rather than dividing by zero.
            let range = if hi > lo { hi - lo } else { 1.0 };
            values.iter_mut().for_each(|v| *v = (*v - lo) / range);
        }
    }
}

/// VOI LUT Sequence (PS3.3 C.11.2.1.1): values below the first mapped value take the first
/// entry, values past the table the last; entries are scaled by the LUT's own bit depth.
fn voi_table(x: f64, lut: &VoiTable) -> f64 {
    let last = lut.data.len() - 1;
    let index = (x.round() - lut.first as f64).clamp(0.0, last as f64) as usize;
    let max = ((1u32 << lut.bits.clamp(1, 16)) - 1) as f64;
    (lut.data[index] as f64 / max).clamp(0.0, 1.0)
}

/// Window Center/Width (PS3.3 C.11.2.1.2) with output range [0, 1].
/// LINEAR (C.11.2.1.2.1): x ≤ c − 0.5 − (w − 1)/2 → 0; x > c − 0.5 + (w − 1)/2 → 1;
/// else ((x − (c − 0.5)) / (w − 1) + 0.5). LINEAR_EXACT (C.11.2.1.3.2): x ≤ c − w/2 → 0;
/// x > c + w/2 → 1; else (x − c)/w + 0.5. SIGMOID (C.11.2.1.3.1): 1 / (1 + exp(−4(x − c)/w)).
pub fn window(x: f64, c: f64, w: f64, function: VoiLutFunction) -> f64 {
    match function {
        VoiLutFunction::Linear => {
            if w <= 1.0 {
                // Width 1 is a threshold (the formula's w − 1 would divide by zero).
                return if x > c - 0.5 { 1.0 } else { 0.0 };
            }
            if x <= c - 0.5 - (w - 1.0) / 2.0 {
                0.0
            } else if x > c - 0.5 + (w - 1.0) / 2.0 {
                1.0
            } else {
                (x - (c - 0.5)) / (w - 1.0) + 0.5
            }
        }
        VoiLutFunction::LinearExact => {
            if x <= c - w / 2.0 {
                0.0
            } else if x > c + w / 2.0 {
                1.0
            } else {
                (x - c) / w + 0.5
            }
        }
        VoiLutFunction::Sigmoid => 1.0 / (1.0 + (-4.0 * (x - c) / w).exp()),
    }
}

/// MONOCHROME1 means the minimum value is white: flip so that air is black, as the model saw
/// in training.
fn invert(grey: &mut [f64]) {
    grey.iter_mut().for_each(|v| *v = 1.0 - *v);
}

/// Grey levels in [0, 1] → Luma8 (round(255·y)) or Luma16 (round(65535·y)).
fn to_image(grey: &[f64], width: u32, height: u32, sixteen: bool) -> DynamicImage {
    let clamp = |v: f64| v.clamp(0.0, 1.0);
    if sixteen {
        let px = grey
            .iter()
            .map(|&v| (clamp(v) * 65535.0).round() as u16)
            .collect();
        DynamicImage::ImageLuma16(
            ImageBuffer::<Luma<u16>, _>::from_raw(width, height, px).expect("buffer size matches"),
        )
    } else {
        let px = grey
            .iter()
            .map(|&v| (clamp(v) * 255.0).round() as u8)
            .collect();
        DynamicImage::ImageLuma8(
            ImageBuffer::<Luma<u8>, _>::from_raw(width, height, px).expect("buffer size matches"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_sentences_in_json_and_data_in_cbor() {
        let warnings = vec![
            DicomWarning::NotRadiograph(None),
            DicomWarning::NotRadiograph(Some("MR".into())),
            DicomWarning::Lateral("LL".into()),
            DicomWarning::MultiFrame(3),
        ];
        let json = serde_json::to_value(&warnings).unwrap();
        assert_eq!(
            json[1],
            "modality is MR: the model was trained on frontal chest radiographs (CR/DX); this result may be meaningless"
        );
        assert!(serde_json::from_value::<Vec<DicomWarning>>(json).is_err());
        let mut cbor = Vec::new();
        ciborium::into_writer(&warnings, &mut cbor).unwrap();
        let back: Vec<DicomWarning> = ciborium::from_reader(cbor.as_slice()).unwrap();
        assert_eq!(back, warnings);
    }

    #[test]
    fn linear_window_follows_ps3_3() {
        // c = 2048, w = 4096: the full 12-bit range maps onto [0, 1].
        let f = VoiLutFunction::Linear;
        assert_eq!(window(0.0, 2048.0, 4096.0, f), 0.0);
        assert_eq!(window(4095.0, 2048.0, 4096.0, f), 1.0);
        assert!((window(2047.5, 2048.0, 4096.0, f) - 0.5).abs() < 1e-12);
        // c = 40, w = 400 (a CT soft-tissue window): bounds at c − 0.5 ∓ (w − 1)/2.
        assert_eq!(window(-160.0, 40.0, 400.0, f), 0.0);
        assert!(window(-159.0, 40.0, 400.0, f) > 0.0);
        assert_eq!(window(239.1, 40.0, 400.0, f), 1.0);
        assert!((window(100.0, 40.0, 400.0, f) - ((100.0 - 39.5) / 399.0 + 0.5)).abs() < 1e-12);
        // Width 1 is a threshold at c − 0.5.
        assert_eq!(window(10.0, 10.0, 1.0, f), 1.0);
        assert_eq!(window(9.5, 10.0, 1.0, f), 0.0);
    }

    #[test]
    fn linear_exact_and_sigmoid_windows() {
        assert_eq!(window(0.0, 100.0, 200.0, VoiLutFunction::LinearExact), 0.0);
        assert!((window(150.0, 100.0, 200.0, VoiLutFunction::LinearExact) - 0.75).abs() < 1e-12);
        assert_eq!(
            window(201.0, 100.0, 200.0, VoiLutFunction::LinearExact),
            1.0
        );
        assert!((window(100.0, 100.0, 200.0, VoiLutFunction::Sigmoid) - 0.5).abs() < 1e-12);
        assert!(window(400.0, 100.0, 200.0, VoiLutFunction::Sigmoid) > 0.99);
    }

    #[test]
    fn monochrome1_is_inverted() {
        let mut grey = vec![0.0, 50.0, 100.0];
        apply_voi(&mut grey, &Voi::MinMax);
        invert(&mut grey);
        assert_eq!(grey, vec![1.0, 0.5, 0.0]);
    }

    #[test]
    fn rescale_then_min_max() {
        let r = Rescale {
            slope: 2.0,
            intercept: -1024.0,
        };
        assert_eq!(modality_lut(1000, r), 976.0);
        assert_eq!(
            modality_lut(
                -3,
                Rescale {
                    slope: 0.5,
                    intercept: 10.0
                }
            ),
            8.5
        );
        let mut values: Vec<f64> = [100, 300, 500]
            .iter()
            .map(|&v| modality_lut(v, r))
            .collect();
        apply_voi(&mut values, &Voi::MinMax);
        assert_eq!(values, vec![0.0, 0.5, 1.0]);
        // A flat image does not divide by zero.
        let mut flat = vec![7.0, 7.0];
        apply_voi(&mut flat, &Voi::MinMax);
        assert_eq!(flat, vec![0.0, 0.0]);
    }

    #[test]
    fn stored_bits_are_masked_and_sign_extended() {
        // 12 bits stored in 16, high bit 11: the top nibble (e.g. an overlay bit) is ignored.
        assert_eq!(mask(0xF123, 0, 12, false), 0x123);
        assert_eq!(mask(0x0FFF, 0, 12, true), -1);
        assert_eq!(mask(0x0800, 0, 12, true), -2048);
        // High bit 15 with 12 bits stored: values sit in the top bits.
        assert_eq!(mask(0xFFF0, 4, 12, false), 0xFFF);
    }

    #[test]
    fn voi_table_clamps_and_scales() {
        let lut = VoiTable {
            first: 10,
            bits: 8,
            data: &[0, 51, 255],
        };
        assert_eq!(voi_table(0.0, &lut), 0.0);
        assert!((voi_table(11.0, &lut) - 0.2).abs() < 1e-12);
        assert_eq!(voi_table(99.0, &lut), 1.0);
    }

    #[test]
    fn packbits_length_counts_complete_runs() {
        // literal of 3, repeat ×4, no-op, then a literal cut short.
        assert_eq!(packbits_len(&[2, 1, 2, 3, 0xFD, 9, 128, 5, 1]), 7);
        assert_eq!(packbits_len(&[]), 0);
        assert_eq!(packbits_len(&[0xFF]), 0);
    }

    #[test]
    fn non_dicom_bytes_are_not_taken_for_dicom() {
        assert!(!is_dicom(b"\x89PNG\r\n\x1a\n"));
        let mut bytes = vec![0u8; 132];
        bytes[128..].copy_from_slice(b"DICM");
        assert!(is_dicom(&bytes));
        // A preamble and magic with nothing after it is a broken file, not a panic.
        assert!(matches!(decode(&bytes), Err(DecodeError::DicomCorrupt(_))));
    }
}
