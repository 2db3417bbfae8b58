//! DICOM input end to end, on the fixtures of tests/fixtures/make_dicom.py and
//! make_dicom_codecs.py (real chest X-rays, fake patient identity): each decodes to exactly the
//! grey levels of its reference PNG (JPEG baseline: within a stated tolerance), gives the same
//! probability through the shipped model, warns where it should, refuses bad files with typed
//! errors, and never prints who the patient is.

mod common;

use burn::prelude::Device;
use pneumoscope::decode::dicom::DicomWarning;
use pneumoscope::decode::{self, DecodeError};
use pneumoscope::predict::Pipeline;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const DIR: &str = "tests/fixtures/dicom";
const CARD: &str = "weights/model-card.json";

fn manifest() -> &'static Value {
    static M: OnceLock<Value> = OnceLock::new();
    M.get_or_init(|| common::fixtures::read_json(Path::new(DIR).join("manifest.json")))
}

fn fixtures() -> impl Iterator<Item = &'static Value> {
    manifest()["fixtures"].as_array().unwrap().iter()
}

fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap()
}

#[test]
fn every_good_fixture_decodes_with_its_summary_and_warnings() {
    for f in fixtures().filter(|f| f["error"].is_null()) {
        let name = f["file"].as_str().unwrap();
        let decoded = decode::decode(&bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let info = decoded
            .dicom
            .unwrap_or_else(|| panic!("{name}: no DICOM summary"));
        if let Some(ts) = f["transfer_syntax"].as_str() {
            assert_eq!(info.transfer_syntax, ts, "{name}");
        }
        if let Some(m) = f["modality"].as_str() {
            assert_eq!(info.modality.as_deref(), Some(m), "{name}");
        }
        assert_eq!(
            info.frames,
            f["frames"].as_u64().unwrap_or(1) as u32,
            "{name}"
        );
        assert_eq!(info.body_part.as_deref(), Some("CHEST"), "{name}");
        assert_eq!(info.study_date.as_deref(), Some("20240117"), "{name}");
        let kinds: Vec<&str> = info
            .warnings
            .iter()
            .map(|w| match w {
                DicomWarning::NotRadiograph(_) => "modality",
                DicomWarning::Lateral(_) => "lateral",
                DicomWarning::MultiFrame(_) => "frames",
            })
            .collect();
        let expected: Vec<&str> = f["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        assert_eq!(kinds, expected, "{name}");
    }
}

#[test]
fn lossless_fixtures_give_exactly_their_reference_pixels() {
    for f in fixtures().filter(|f| f["tolerance"].as_f64() == Some(1e-3)) {
        let name = f["file"].as_str().unwrap();
        let dicom = decode::decode(&bytes(name)).unwrap().image;
        let reference = decode::image_from_bytes(&bytes(f["reference"].as_str().unwrap())).unwrap();
        assert_eq!(dicom.color(), reference.color(), "{name}: bit depth");
        assert_eq!(
            (dicom.width(), dicom.height()),
            (reference.width(), reference.height()),
            "{name}"
        );
        assert!(
            dicom.as_bytes() == reference.as_bytes(),
            "{name}: grey levels differ from the reference PNG"
        );
    }
}

#[test]
fn dicom_and_reference_png_give_the_same_probability() {
    let pipeline = Pipeline::from_card_file(Path::new(CARD), &Device::flex()).unwrap();
    for f in fixtures().filter(|f| !f["reference"].is_null()) {
        let name = f["file"].as_str().unwrap();
        let tolerance = f["tolerance"].as_f64().unwrap() as f32;
        let p_dicom = pipeline.analyse_blocking(&bytes(name)).unwrap().probability;
        let p_png = pipeline
            .analyse_blocking(&bytes(f["reference"].as_str().unwrap()))
            .unwrap()
            .probability;
        let delta = (p_dicom - p_png).abs();
        println!(
            "{name}: p = {p_dicom:.6}, reference {p_png:.6}, |Δ| = {delta:.2e} (tolerance {tolerance})"
        );
        assert!(delta <= tolerance, "{name}: |Δp| = {delta} > {tolerance}");
    }
}

#[test]
fn unsupported_transfer_syntax_is_named() {
    let err = decode::decode(&bytes("jpeg2000_unsupported.dcm")).unwrap_err();
    match &err {
        DecodeError::DicomTransferSyntax { name, uid } => {
            assert!(name.contains("JPEG 2000"), "{name}");
            assert_eq!(uid, "1.2.840.10008.1.2.4.90");
        }
        other => panic!("expected DicomTransferSyntax, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("JPEG 2000") && message.contains("1.2.840.10008.1.2.4.90"),
        "{message}"
    );
}

/// 12-bit lossy JPEG (JPEG extended, process 4) is what most such radiographs hold, and the JPEG
/// decoder has no 12-bit DCT: the refusal says so and what to export, instead of calling a valid
/// file damaged.
#[test]
fn twelve_bit_lossy_jpeg_is_refused_by_name() {
    let err = decode::decode(&bytes("jpeg_extended_12bit.dcm")).unwrap_err();
    assert!(
        matches!(err, DecodeError::DicomUnsupported(_)),
        "expected DicomUnsupported, got {err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("12-bit lossy JPEG") && message.contains("JPEG lossless"),
        "{message}"
    );
}

/// A meta group element that dicom-rs reads but does not keep (an unknown group-2 tag) must not
/// move where the data set is taken to start: dicom-rs' recomputed group length leaves it out, and
/// the data set was once inflated (and length-checked) from 12 bytes too early.
#[test]
fn an_unknown_meta_element_does_not_move_the_data_set() {
    for name in ["deflated.dcm", "mono2_explicit_8bit.dcm"] {
        let original = bytes(name);
        let group_length = u32::from_le_bytes(original[140..144].try_into().unwrap());
        let data_set = 144 + group_length as usize;
        let unknown = [&[0x02, 0x00, 0x99, 0x00][..], b"SH", &[4, 0], b"ABCD"].concat();
        let mut file = original[..data_set].to_vec();
        file[140..144].copy_from_slice(&(group_length + unknown.len() as u32).to_le_bytes());
        file.extend_from_slice(&unknown);
        file.extend_from_slice(&original[data_set..]);
        let expected = decode::decode(&original).unwrap().image;
        let decoded = decode::decode(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(decoded.image.as_bytes() == expected.as_bytes(), "{name}");
    }
}

#[test]
fn huge_image_is_refused_from_its_header() {
    let result = decode::decode(&bytes("huge_header.dcm"));
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

#[test]
fn truncated_files_are_typed_errors_not_panics() {
    let result = decode::decode(&bytes("truncated.dcm"));
    assert!(
        matches!(result, Err(DecodeError::DicomCorrupt(_))),
        "{result:?}"
    );
    // Every fixture cut at many points: an error (or, for a cut after the first frame of the
    // multi-frame file, an image), never a panic.
    for f in fixtures().filter(|f| f["error"].is_null()) {
        let whole = bytes(f["file"].as_str().unwrap());
        let cuts = (0..64)
            .map(|i| 132 + i * 7)
            .chain((1..40).map(|i| whole.len() * i / 40));
        for cut in cuts.filter(|&c| c < whole.len()) {
            let result = decode::decode(&whole[..cut]);
            if let Err(e) = &result {
                assert!(
                    matches!(
                        e,
                        DecodeError::DicomCorrupt(_)
                            | DecodeError::DicomUnsupported(_)
                            | DecodeError::NotAnImage
                    ),
                    "{} cut at {cut}: {e:?}",
                    f["file"]
                );
            }
        }
    }
}

#[test]
fn cli_reports_the_summary_and_never_the_patient() {
    let files = [
        "ct_lateral.dcm",
        "IM000001",
        "multiframe_2.dcm",
        "windowed_12bit.dcm",
        "jpeg2000_unsupported.dcm",
        "truncated.dcm",
    ];
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pneumoscope"))
        .args(["predict", "--card", CARD])
        .args(files.iter().map(|f| path(f)))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let everything = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    for secret in [
        manifest()["patient_name"].as_str().unwrap(),
        manifest()["patient_id"].as_str().unwrap(),
        "Zorglub",
        "99173",
        "ACC-7781",
        "Fake General Hospital",
        "19700101",
    ] {
        assert!(
            !everything.contains(secret),
            "the output contains {secret:?}:\n{everything}"
        );
    }
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), files.len());
    let ct = &lines[0]["dicom"];
    assert_eq!(ct["modality"], "CT");
    assert_eq!(ct["view_position"], "LL");
    assert_eq!(ct["body_part"], "CHEST");
    assert_eq!(ct["study_date"], "20240117");
    assert_eq!(ct["frames"], 1);
    assert_eq!(ct["transfer_syntax"], "Explicit VR Little Endian");
    let warnings = ct["warnings"].to_string();
    assert!(
        warnings.contains("trained on frontal chest radiographs (CR/DX)")
            && warnings.contains("lateral"),
        "{warnings}"
    );
    assert!(
        lines[1]["probability"].is_number(),
        "an extension-less DICOM is read: {}",
        lines[1]
    );
    assert!(
        lines[2]["dicom"]["warnings"]
            .to_string()
            .contains("only the first frame"),
        "{}",
        lines[2]
    );
    assert!(
        lines[4]["error"].as_str().unwrap().contains("JPEG 2000"),
        "{}",
        lines[4]
    );
    assert!(
        lines[5]["error"]
            .as_str()
            .unwrap()
            .contains("DICOM file is damaged"),
        "{}",
        lines[5]
    );
}
