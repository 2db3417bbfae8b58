//! `pneumoscope predict` end to end with the shipped weights: JSON and CSV output agree, bad
//! files get an error row while the others go on, and `--gradcam-dir` writes the overlays.

use std::path::{Path, PathBuf};
use std::process::Command;

const DATA: &str = "../shared/data/chest_xray/test";

fn first(class: &str) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(DATA).join(class)).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.remove(0)
}

fn predict(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pneumoscope")).arg("predict").args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn csv_and_json_agree_and_overlays_are_written() {
    let dir = std::env::temp_dir().join(format!("pneumoscope-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let not_an_image = dir.join("notes.png");
    std::fs::write(&not_an_image, "not an image").unwrap();
    let (normal, pneumonia) = (first("NORMAL"), first("PNEUMONIA"));
    let files = [normal.to_str().unwrap(), not_an_image.to_str().unwrap(), pneumonia.to_str().unwrap()];

    let json: Vec<serde_json::Value> = predict(&files).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(json.len(), 3);
    assert!(json[1]["error"].as_str().unwrap().contains("not an image"));

    let overlays = dir.join("overlays");
    let mut args = files.to_vec();
    args.extend(["--format", "csv", "--gradcam-dir", overlays.to_str().unwrap()]);
    let csv = predict(&args);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, ["file", "probability", "label", "band", "milliseconds", "gradcam", "dicom_warnings", "error"]);
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
                let expect = if scale < 1.0 { (source.width() as f64 * scale).round() as u32 } else { source.width() };
                assert!(overlay.width().abs_diff(expect) <= 1, "overlay {}×{} for source {}×{}", overlay.width(), overlay.height(), source.width(), source.height());
                let reds = overlay.pixels().filter(|p| p[0] > p[2] + 40).count();
                assert!(reds > 0, "the overlay shows no heat at all");
            }
            None => assert!(row[7].contains("not an image")),
        }
    }
    assert_eq!(std::fs::read_dir(&overlays).unwrap().count(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
