//! `pneumoscope predict` end to end with the shipped weights: JSON and CSV output agree, bad
//! files get an error row while the others go on, `--gradcam-dir` writes the overlays, and
//! inputs unlike the training X-rays are refused (out-of-distribution check); `train --resume`
//! needs only the run folder.

mod common;

use common::data::{sorted_files, test_data_dir};
use common::fixtures::read_json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first file (by name) of `class` in the test split.
fn first(class: &str) -> PathBuf {
    sorted_files(&test_data_dir().join(class)).remove(0)
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pneumoscope"))
        .arg("predict")
        .args(args)
        .output()
        .unwrap()
}

fn predict(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_lines(args: &[&str]) -> Vec<serde_json::Value> {
    predict(args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pneumoscope-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const CARD: &str = "weights/model-card.json";
const NOT_XRAY: &str = "tests/data/not_xray_64.png";
const XRAY: &str = "tests/data/xray_64.png";
const XRAY_INVERTED: &str = "tests/data/xray_64_inverted.png";
const EXIF_UPRIGHT: &str = "tests/data/exif_upright.jpg";

/// A copy of the shipped card, changed by `edit`, beside links to the shipped weights and stats.
fn edited_card(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut card = read_json(CARD);
    for key in ["weights", "ood"] {
        let file = card[key]["file"].as_str().unwrap().to_string();
        std::os::unix::fs::symlink(
            std::fs::canonicalize(Path::new("weights").join(&file)).unwrap(),
            dir.join(&file),
        )
        .unwrap();
    }
    edit(&mut card);
    let path = dir.join("model-card.json");
    std::fs::write(&path, serde_json::to_string_pretty(&card).unwrap()).unwrap();
    path
}

#[test]
fn a_photo_is_refused_and_an_xray_accepted() {
    let rows = json_lines(&[NOT_XRAY, XRAY, XRAY_INVERTED]);
    let (photo, xray, negative) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(photo["refused"], true, "{photo}");
    assert_eq!(photo["ood"]["status"], "refused");
    assert!(
        photo["message"]
            .as_str()
            .unwrap()
            .contains("does not look like a chest X-ray the model was trained on")
    );
    assert!(
        photo.get("probability").is_none()
            && photo.get("label").is_none()
            && photo.get("band").is_none(),
        "{photo}"
    );
    let (d, t) = (
        photo["ood"]["distance"].as_f64().unwrap(),
        photo["ood"]["threshold"].as_f64().unwrap(),
    );
    assert!(d > t, "{photo}");

    assert_eq!(xray["refused"], false, "{xray}");
    assert_eq!(xray["ood"]["status"], "passed");
    assert!(xray["probability"].as_f64().is_some() && xray.get("message").is_none());

    // A negative X-ray: refused, but recognised as inverted; --invert then accepts it with the
    // original's probability.
    assert_eq!(negative["refused"], true, "{negative}");
    assert_eq!(negative["ood"]["fix"], "invert", "{negative}");
    assert!(negative["message"].as_str().unwrap().contains("--invert"));
    let fixed = &json_lines(&["--invert", XRAY_INVERTED])[0];
    assert_eq!(fixed["refused"], false, "{fixed}");
    assert!(
        (fixed["probability"].as_f64().unwrap() - xray["probability"].as_f64().unwrap()).abs()
            < 1e-3
    );

    // Shown anyway on request, in every format.
    let anyway = &json_lines(&["--show-anyway", NOT_XRAY])[0];
    assert_eq!(anyway["refused"], true);
    assert!(
        anyway["probability"].as_f64().is_some() && anyway["label"].is_string(),
        "{anyway}"
    );
    let text = predict(&["--format", "text", NOT_XRAY, XRAY]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("REFUSED")
            && lines[0].contains("does not look like a chest X-ray")
            && !lines[0].contains("probability"),
        "{text}"
    );
    assert!(
        lines[1].contains("probability of PNEUMONIA") && !lines[1].contains("REFUSED"),
        "{text}"
    );
    assert!(predict(&["--format", "text", "--show-anyway", NOT_XRAY]).contains("shown anyway"));

    // No heatmap for a refused image unless asked.
    let dir = temp_dir("ood-overlays");
    let csv = predict(&[
        "--format",
        "csv",
        "--gradcam-dir",
        dir.to_str().unwrap(),
        NOT_XRAY,
    ]);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let row = reader.records().next().unwrap().unwrap();
    assert_eq!(
        (&row[1], &row[2], &row[5], &row[7]),
        ("", "", "", "refused"),
        "{csv}"
    );
    assert!(row[10].contains("does not look like a chest X-ray"));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn older_cards_without_ood_statistics_refuse_nothing_and_say_so() {
    let dir = temp_dir("no-ood");
    let card = edited_card(&dir, |c| {
        c.as_object_mut().unwrap().remove("ood");
    });
    let out = run(&["--card", card.to_str().unwrap(), NOT_XRAY]);
    assert!(out.status.success());
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["ood"]["status"], "unavailable");
    assert_eq!(line["refused"], false);
    assert!(line["probability"].as_f64().is_some());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OOD check unavailable"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_or_missing_ood_statistics_are_clear_errors() {
    let dir = temp_dir("bad-ood");
    let card = edited_card(&dir, |c| c["ood"]["sha256"] = "0".repeat(64).into());
    let out = run(&["--card", card.to_str().unwrap(), XRAY]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OOD statistics") && err.contains("sha256"),
        "{err}"
    );

    let missing = temp_dir("missing-ood");
    let card = edited_card(&missing, |c| {
        c["ood"]["file"] = "nowhere.ood.safetensors".into()
    });
    let out = run(&["--card", card.to_str().unwrap(), XRAY]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reading OOD statistics"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&missing);
}

#[test]
fn csv_and_json_agree_and_overlays_are_written() {
    let dir = std::env::temp_dir().join(format!("pneumoscope-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let not_an_image = dir.join("notes.png");
    std::fs::write(&not_an_image, "not an image").unwrap();
    let (normal, pneumonia) = (first("NORMAL"), first("PNEUMONIA"));
    let files = [
        normal.to_str().unwrap(),
        not_an_image.to_str().unwrap(),
        pneumonia.to_str().unwrap(),
    ];

    // --show-anyway: the comparison below must not depend on the OOD verdict.
    let mut json_args = files.to_vec();
    json_args.push("--show-anyway");
    let json: Vec<serde_json::Value> = json_lines(&json_args);
    assert_eq!(json.len(), 3);
    assert!(json[1]["error"].as_str().unwrap().contains("not an image"));

    let overlays = dir.join("overlays");
    let mut args = files.to_vec();
    args.extend([
        "--format",
        "csv",
        "--show-anyway",
        "--gradcam-dir",
        overlays.to_str().unwrap(),
    ]);
    let csv = predict(&args);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "file",
            "probability",
            "label",
            "band",
            "milliseconds",
            "gradcam",
            "dicom_warnings",
            "ood",
            "ood_distance",
            "ood_threshold",
            "note",
            "error"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    for (row, json) in rows.iter().zip(&json) {
        assert_eq!(&row[0], json["file"].as_str().unwrap());
        match json["probability"].as_f64() {
            Some(p) => {
                assert!((row[1].parse::<f64>().unwrap() - p).abs() < 1e-6);
                assert_eq!(&row[2], json["label"].as_str().unwrap());
                assert_eq!(&row[3], json["band"].as_str().unwrap());
                // The overlay has the X-ray's aspect (long side at most 1024) and is not blank.
                let overlay = image::open(&row[5]).unwrap().to_rgb8();
                let source = image::open(&row[0]).unwrap();
                let scale = 1024.0 / source.width().max(source.height()) as f64;
                let expect = if scale < 1.0 {
                    (source.width() as f64 * scale).round() as u32
                } else {
                    source.width()
                };
                assert!(
                    overlay.width().abs_diff(expect) <= 1,
                    "overlay {}×{} for source {}×{}",
                    overlay.width(),
                    overlay.height(),
                    source.width(),
                    source.height()
                );
                let reds = overlay.pixels().filter(|p| p[0] > p[2] + 40).count();
                assert!(reds > 0, "the overlay shows no heat at all");
            }
            None => assert!(row[11].contains("not an image")),
        }
    }
    assert_eq!(std::fs::read_dir(&overlays).unwrap().count(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_reads_the_run_folder_and_needs_no_data_option() {
    let empty = temp_dir("resume-empty");
    let out = Command::new(env!("CARGO_BIN_EXE_pneumoscope"))
        .args(["train", "--resume", "--out"])
        .arg(&empty)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no config.json"), "{stderr}");
    assert!(
        !stderr.contains("--data"),
        "--resume must not ask for --data: {stderr}"
    );
    let fresh = Command::new(env!("CARGO_BIN_EXE_pneumoscope"))
        .args(["train", "--out"])
        .arg(&empty)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&fresh.stderr).contains("--data"),
        "a new run still needs --data"
    );
}

#[test]
fn batches_give_the_results_of_single_images_in_file_order() {
    let dir = temp_dir("batch");
    let broken = dir.join("truncated.png");
    std::fs::write(&broken, &std::fs::read(XRAY).unwrap()[..100]).unwrap();
    let (normal, pneumonia) = (first("NORMAL"), first("PNEUMONIA"));
    // Two batches of 4 with a broken file and refused images among them.
    let files = [
        normal.to_str().unwrap(),
        broken.to_str().unwrap(),
        NOT_XRAY,
        XRAY,
        pneumonia.to_str().unwrap(),
        XRAY_INVERTED,
        "missing.png",
    ];
    let lines = |batch: &str| {
        let mut args = vec!["--show-anyway", "--batch", batch];
        args.extend(files);
        json_lines(&args)
    };
    let (single, batched) = (lines("1"), lines("4"));
    assert_eq!(single.len(), files.len());
    assert_eq!(batched.len(), files.len());
    for ((one, many), file) in single.iter().zip(&batched).zip(files) {
        assert_eq!(many["file"].as_str().unwrap(), file);
        assert_eq!(one["error"], many["error"], "{file}");
        assert_eq!(one["refused"], many["refused"], "{file}");
        if let Some(p) = one["probability"].as_f64() {
            let q = many["probability"].as_f64().unwrap();
            assert!((p - q).abs() < 1e-6, "{file}: {p} alone, {q} in a batch");
        }
    }
    assert!(batched[1]["error"].is_string() && batched[6]["error"].is_string());
    assert!(batched[3]["probability"].is_f64() && batched[2]["refused"].as_bool().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A picture stored turned, with an EXIF Orientation saying how to show it (as phones save
/// them), is analysed the way browsers and viewers show it: like the same X-ray stored upright
/// (`tests/fixtures/make_display_fixtures.py`; the two differ only by JPEG re-encoding).
#[test]
fn an_exif_turned_jpeg_is_analysed_upright() {
    let rows = json_lines(&["--show-anyway", EXIF_UPRIGHT, "tests/data/exif_turned.jpg"]);
    let p = |i: usize| rows[i]["probability"].as_f64().unwrap();
    assert!(
        (p(0) - p(1)).abs() < 0.01,
        "upright {} vs turned {}",
        p(0),
        p(1)
    );
}

/// A 16-bit PNG holding 12-bit values (as DICOM → PNG conversions write them; read as 16-bit it
/// is nearly black) is analysed like the same X-ray stored in 8 bits, not refused as unlike one
/// (`tests/fixtures/make_display_fixtures.py`).
#[test]
fn a_sixteen_bit_png_of_twelve_bit_values_is_analysed_like_the_eight_bit_file() {
    let rows = json_lines(&[EXIF_UPRIGHT, "tests/data/twelve_bit.png"]);
    let p = |i: usize| rows[i]["probability"].as_f64().unwrap();
    assert_eq!(rows[1]["refused"], false, "{}", rows[1]);
    assert!(
        (p(0) - p(1)).abs() < 1e-3,
        "8-bit {} vs 12-bit {}",
        p(0),
        p(1)
    );
}

/// Each kind of bad input in the README's table gets its message as that file's `error`, and
/// the files after it are still analysed (fixtures: tests/fixtures/make_bad_inputs.py; more
/// DICOM cases, compressed and truncated, in tests/dicom.rs).
#[test]
fn every_bad_input_gets_its_message_and_the_next_file_goes_on() {
    let dir = temp_dir("bad-inputs");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let xray = std::fs::read(XRAY).unwrap();
    // A PNG declaring 8000×7500 (60 megapixels) in a few bytes: refused from its header.
    let ihdr = [
        &8000u32.to_be_bytes()[..],
        &7500u32.to_be_bytes(),
        &[8, 0, 0, 0, 0],
    ]
    .concat();
    let huge = [
        b"\x89PNG\r\n\x1a\n".to_vec(),
        png_chunk(b"IHDR", &ihdr),
        png_chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]),
        png_chunk(b"IEND", &[]),
    ]
    .concat();
    let cases: Vec<(String, &str)> = vec![
        (write("empty.png", b""), "the file is empty (0 bytes)"),
        (
            write("text.png", b"not an image"),
            "not an image the app can read",
        ),
        (
            write("anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
            "GIF images are not supported",
        ),
        (
            // An iPhone photo's first box (a HEIC file's pixels are never read).
            write("photo.heic", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"),
            "HEIF/HEIC images are not supported (use PNG, JPEG or DICOM)",
        ),
        (
            write("cut.png", &xray[..xray.len() / 2]),
            "damaged or truncated",
        ),
        (write("huge.png", &huge), "the limit is 50 megapixels"),
        (
            "tests/data/bad/zero_by_zero.png".into(),
            "the image has no pixels (0×0)",
        ),
        (
            "tests/data/bad/drawing.svg".into(),
            "SVG (vector) images are not supported",
        ),
        (
            "tests/data/bad/archive_renamed.dcm".into(),
            "this is a zip archive, not an image",
        ),
        (
            "tests/data/bad/jpeg_12bit.jpg".into(),
            "the image is compressed as 12-bit lossy JPEG (JPEG extended), which this app cannot decode; save it as an 8-bit JPEG or as PNG",
        ),
        (
            "tests/data/bad/jpeg_lossless.jpg".into(),
            "the image is compressed as lossless JPEG, which this app cannot decode",
        ),
        (
            dir.join("missing.png").to_str().unwrap().into(),
            "cannot read the file",
        ),
        (
            {
                // 300 MB on paper, nothing on disk (sparse): refused before it is read.
                let path = dir.join("huge-file.png");
                std::fs::File::create(&path)
                    .unwrap()
                    .set_len(300 << 20)
                    .unwrap();
                path.to_str().unwrap().to_string()
            },
            "the file is 300 MB; the limit is 256 MB",
        ),
        (
            "tests/data/bad/no_pixel_data.dcm".into(),
            "the file holds no image (no Pixel Data)",
        ),
        (
            "tests/data/bad/lying_length.dcm".into(),
            "element (7FE0,0010) declares 200704 bytes but only 50176 follow",
        ),
        (
            "tests/data/bad/pixel_data_4gb.dcm".into(),
            "element (7FE0,0010) declares 4294967280 bytes but only 50176 follow",
        ),
        (
            "tests/data/bad/fragment_past_the_end.dcm".into(),
            "element (FFFE,E000) declares 112636 bytes but only 12644 follow",
        ),
        (
            "tests/data/bad/fragment_cut_short.dcm".into(),
            "element (FFFE,E000) declares 12636 bytes but only 6318 follow",
        ),
        (
            "tests/data/bad/jpeg_frame_too_small.dcm".into(),
            "the JPEG frame is too small (12636 bytes) for the 7000×7000 pixels it declares",
        ),
        (
            "tests/data/bad/deflate_bomb.dcm".into(),
            "its deflated data set inflates to more than 111 MB",
        ),
        (
            "tests/fuzz/decode/deflate-error-hid-a-3.2-GB-length".into(),
            "damaged or truncated: deflated data set",
        ),
        (
            "tests/fuzz/decode/ul-of-2-bytes-shifted-a-4-GB-length".into(),
            "element (0028,0102) is UL (4 bytes a number) but declares 2 bytes",
        ),
        (
            "tests/fuzz/decode/deflated-zeros-inflate-to-nine-million-empty-elements".into(),
            "more than 65536 elements",
        ),
        (
            "tests/fuzz/decode/off-group-meta-element-moved-the-deflate-start-3.7-GB.dcm".into(),
            "element (E2DB,DCE2) declares 3655065571 bytes but only 80 follow",
        ),
        (
            "tests/fuzz/decode/item-outside-a-sequence-hid-a-3.8-GB-length.dcm".into(),
            "element (0038,0000) declares 3774863615 bytes but only 12641 follow",
        ),
        (
            "tests/fuzz/decode/sq-vr-in-the-meta-group-hid-a-3.5-GB-length.dcm".into(),
            "file meta information: element (0002,0010) declares 3519926734 bytes but only 432 follow",
        ),
        (
            "tests/fuzz/decode/meta-element-straddling-the-group-end-2.9-GB.dcm".into(),
            "file meta information: element (0002,0003) declares 2922524209 bytes but only 13332 follow",
        ),
        (
            "tests/fixtures/dicom/jpeg_extended_12bit.dcm".into(),
            "this DICOM file cannot be analysed: its pixels are 12-bit lossy JPEG (JPEG extended)",
        ),
    ];
    let mut args: Vec<&str> = cases.iter().map(|(file, _)| file.as_str()).collect();
    // Not errors: the text chunk is not inflated and the restart markers are skipped; each
    // image is analysed (or refused as unlike an X-ray), never a crash.
    args.extend([
        "tests/data/bad/text_chunk_bomb.png",
        "tests/data/bad/restart_storm.jpg",
        XRAY,
    ]);
    let rows = json_lines(&args);
    assert_eq!(rows.len(), args.len());
    for ((file, expected), row) in cases.iter().zip(&rows) {
        let error = row["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: {row}"));
        assert!(
            error.contains(expected),
            "{file}: '{error}' lacks '{expected}'"
        );
    }
    for row in &rows[cases.len()..] {
        assert!(row.get("error").is_none(), "{row}");
        assert!(row["refused"].is_boolean(), "{row}");
    }
    assert_eq!(rows.last().unwrap()["refused"], false);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A PNG chunk: length, type, data, CRC-32 of type and data.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let body = [kind.as_slice(), data].concat();
    [
        (data.len() as u32).to_be_bytes().as_slice(),
        &body,
        &crc32fast::hash(&body).to_be_bytes(),
    ]
    .concat()
}
