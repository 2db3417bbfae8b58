//! Replays, on stable, every input the fuzz targets (`fuzz/`, docs/fuzzing.md) found to crash,
//! hang or over-allocate once it was fixed (`tests/fuzz/<target>/`), and the committed
//! fixtures as seeds, through the same entry points (`pneumoscope::fuzzing`): each must
//! return without panicking.

use pneumoscope::fuzzing;
use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 7] = [
    ("decode", fuzzing::decode_bytes),
    ("dicom", fuzzing::dicom_patched),
    ("raster_dimensions", fuzzing::raster_dimensions),
    ("model_card", fuzzing::model_card),
    ("weights", fuzzing::weights),
    ("ood_statistics", fuzzing::ood_statistics),
    ("keras_model", fuzzing::keras_model),
];

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn every_regression_input_returns() {
    let mut replayed = 0;
    for (name, target) in TARGETS {
        for file in files(&Path::new("tests/fuzz").join(name)) {
            target(&std::fs::read(&file).unwrap());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} regression inputs");
}

#[test]
fn the_fixtures_pass_through_every_target() {
    let mut inputs = Vec::new();
    for dir in [
        "tests/data",
        "tests/data/bad",
        "tests/fixtures/dicom",
        "tests/fixtures/keras",
    ] {
        inputs.extend(files(Path::new(dir)));
    }
    inputs.push("weights/model-card.json".into());
    assert!(inputs.len() > 30, "{} inputs", inputs.len());
    for file in &inputs {
        let bytes = std::fs::read(file).unwrap();
        for (_, target) in TARGETS {
            // The whole file, and its first half (a cut-off download).
            target(&bytes);
            target(&bytes[..bytes.len() / 2]);
        }
    }
}
