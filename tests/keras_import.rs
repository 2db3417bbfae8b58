//! Keras import against Keras itself (fixtures from tests/fixtures/make_keras.py, TensorFlow
//! 2.21 / Keras 3.15): tiny `keras.applications` DenseNets (blocks [1, 1, 1, 1]) with each head
//! shape — nested in a Sequential with Dense(1, sigmoid), flat with Dense(4, softmax), and with a
//! Rescaling layer and Dense-ReLU-Dropout-Dense — saved as `.h5` and `.keras`: probabilities
//! within 1e-4 and Grad-CAM maps within 1e-3 of Keras / TensorFlow's on two real X-rays at 128² (the
//! imported f32 model); the int8 folder `pneumoscope import` writes predicts through the CLI;
//! bad files (another architecture, a ResNet50, truncated, without weights) are clear errors.

mod common;

use burn::prelude::*;
use common::fixtures::{floats_f32, read_json};
use pneumoscope::card::Normalisation;
use pneumoscope::keras::{self, InputScaling};
use pneumoscope::model::probabilities;
use pneumoscope::{gradcam, preprocess};
use std::path::Path;
use std::process::Command;

const FIXTURES: &str = "tests/fixtures/keras";
const SIZE: usize = 128;

fn read(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Probabilities and the Grad-CAM map of the golden class for one image.
fn analyse(
    imported: &keras::Imported,
    norm: &Normalisation,
    image: &str,
    class: usize,
) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex();
    let img = image::open(Path::new("tests/data").join(image)).unwrap();
    let pixels = preprocess::pixels_chw(&img, SIZE as u32, norm);
    let x = preprocess::batch_tensor(pixels, SIZE, &device);
    let model = &imported.model;
    let features = model.forward_features(x);
    let pooled = model.pool(features.clone());
    let probs: Vec<f32> = probabilities(model.logits(pooled.clone()))
        .into_data()
        .try_to_vec()
        .unwrap();
    let probs = if model.num_outputs() == 1 {
        vec![probs[1]]
    } else {
        probs
    };
    let [_, _, h, w] = features.dims();
    let raw: Vec<f32> = gradcam::raw_maps(features, model.logit_gradient(pooled, class))
        .into_data()
        .try_to_vec()
        .unwrap();
    (probs, gradcam::finish(&raw, (w, h), SIZE).values)
}

#[test]
fn every_head_and_format_matches_keras_probabilities_and_grad_cam() {
    let golden = read_json(Path::new(FIXTURES).join("golden.json"));
    let mut worst = (0.0f32, 0.0f32);
    for (name, expected) in golden.as_object().unwrap() {
        for format in ["h5", "keras"] {
            let file = format!("{name}.{format}");
            let imported = keras::import(read(&file), &Device::flex())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(imported.input_size, Some(SIZE), "{file}");
            // The Rescaling model brings its own scaling; the others expect preprocess_input.
            let norm = match expected["scaling"].as_str().unwrap() {
                "raw" => imported.normalisation.clone().expect("a Rescaling layer"),
                _ => {
                    assert!(imported.normalisation.is_none(), "{file}");
                    InputScaling::KerasTorch.normalisation()
                }
            };
            for (image, e) in expected["images"].as_object().unwrap() {
                let class = e["class"].as_u64().unwrap() as usize;
                let (probs, cam) = analyse(&imported, &norm, image, class);
                let dp = max_diff(&probs, &floats_f32(&e["probabilities"]));
                let dc = max_diff(&cam, &floats_f32(&e["cam"]));
                assert!(dp <= 1e-4, "{file} {image}: max |Δp| {dp}");
                assert!(dc <= 1e-3, "{file} {image}: max |Δcam| {dc}");
                worst = (worst.0.max(dp), worst.1.max(dc));
            }
        }
    }
    eprintln!(
        "Keras import: max |Δp| {:.1e}, max |Δcam| {:.1e}",
        worst.0, worst.1
    );
}

#[test]
fn heads_are_read_as_keras_built_them() {
    let head = |file: &str| keras::import(read(file), &Device::flex()).unwrap();
    let mlp = head("mlp.keras");
    assert_eq!(mlp.config.hidden_widths(), [16]);
    assert_eq!(mlp.config.block_config, vec![1, 1, 1, 1]);
    assert_eq!(
        (
            mlp.config.growth_rate,
            mlp.config.num_init_features,
            mlp.config.bn_size
        ),
        (32, 64, 4)
    );
    assert!(
        mlp.head.contains("Dense(16, relu) → Dense(1, sigmoid)"),
        "{}",
        mlp.head
    );
    // Rescaling(1/127.5, offset −1) is (x/255 − 0.5) / 0.5.
    let norm = mlp.normalisation.unwrap();
    for (m, s) in norm.mean.iter().zip(&norm.std) {
        assert!((m - 0.5).abs() < 1e-6 && (s - 0.5).abs() < 1e-6, "{norm:?}");
    }
    assert_eq!(head("softmax4.h5").config.num_outputs, 4);
}

fn import_error(bytes: Vec<u8>) -> String {
    match keras::import(bytes, &Device::flex()) {
        Ok(_) => panic!("imported"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_files_are_clear_errors() {
    let other = import_error(read("not_densenet.h5"));
    assert!(
        other.contains("conv1_conv") && other.contains("conv_a"),
        "{other}"
    );
    // keras.applications.ResNet50 (its saved config; refused before any weight is read).
    let resnet = import_error(read("resnet50.h5"));
    assert!(
        resnet.contains("not a Keras DenseNet: no layer bn")
            && resnet.contains("conv1_conv (Conv2D)"),
        "{resnet}"
    );
    let mut truncated = read("sigmoid.h5");
    truncated.truncate(truncated.len() / 2);
    let truncated = import_error(truncated);
    assert!(
        truncated.starts_with("cannot read the Keras file"),
        "{truncated}"
    );
    let no_weights = import_error(read("no_weights.keras"));
    assert!(no_weights.contains("model.weights.h5"), "{no_weights}");
    let text = import_error(b"model = keras.Sequential()".to_vec());
    assert!(text.contains("neither an HDF5 file"), "{text}");
}

#[test]
fn the_cli_writes_a_folder_that_predict_loads() {
    let out = std::env::temp_dir().join(format!("pneumoscope-keras-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let bin = env!("CARGO_BIN_EXE_pneumoscope");
    let import = Command::new(bin)
        .args(["import", "tests/fixtures/keras/mlp.keras", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let card = read_json(out.join("model-card.json"));
    assert!(
        card["training"]["recipe"]
            .as_str()
            .unwrap()
            .contains("imported from Keras"),
        "{card}"
    );
    assert_eq!(card["architecture"]["hidden"], serde_json::json!([16]));

    let predict = Command::new(bin)
        .args(["predict", "--card"])
        .arg(out.join("model-card.json"))
        .arg("tests/data/keras_pneumonia_128.png")
        .output()
        .unwrap();
    assert!(
        predict.status.success(),
        "{}",
        String::from_utf8_lossy(&predict.stderr)
    );
    let row: serde_json::Value = serde_json::from_slice(&predict.stdout).unwrap();
    let golden = read_json(Path::new(FIXTURES).join("golden.json"));
    let keras_p = golden["mlp"]["images"]["keras_pneumonia_128.png"]["probabilities"][0]
        .as_f64()
        .unwrap();
    let ours = row["probability"].as_f64().unwrap();
    // int8 kernels: within 0.01 of Keras' f32 (the f32 import is within 1e-4, above).
    assert!(
        (ours - keras_p).abs() < 0.01,
        "int8 {ours} vs Keras {keras_p}"
    );
    assert_eq!(row["ood"]["status"], "unavailable", "{row}");

    let twice = Command::new(bin)
        .args([
            "import",
            "tests/fixtures/keras/mlp.keras",
            "--normalisation",
            "unit",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("Rescaling"));
    std::fs::remove_dir_all(&out).unwrap();
}
