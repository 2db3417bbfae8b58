//! The committed JSON references: `tests/fixtures/golden.json` (PyTorch's outputs on the tiny
//! models, made by tests/fixtures/make_fixtures.py) and the other JSON files tests compare with.

use burn::prelude::*;
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;

/// A JSON file, parsed; panics naming the file if it is missing or not JSON.
pub fn read_json(path: impl AsRef<Path>) -> Value {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A JSON array of numbers as f32.
pub fn floats_f32(v: &Value) -> Vec<f32> {
    floats_f64(v).into_iter().map(|x| x as f32).collect()
}

/// A JSON array of numbers as f64.
pub fn floats_f64(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array of numbers, got {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")))
        .collect()
}

/// tests/fixtures/golden.json: the input batch and, per model, PyTorch's probabilities and
/// pytorch-grad-cam's maps.
pub struct Golden {
    pub shape: [usize; 4],
    pub input: Vec<f32>,
    pub models: Value,
}

impl Golden {
    /// The input batch as a tensor on `device`.
    pub fn input_tensor(&self, device: &Device) -> Tensor<4> {
        Tensor::<4>::from_data(TensorData::new(self.input.clone(), self.shape), device)
    }

    /// The reference probabilities of model `name`.
    pub fn probabilities(&self, name: &str) -> Vec<f32> {
        floats_f32(&self.models[name]["probabilities"])
    }
}

/// golden.json, read once.
pub fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| {
        let v = read_json("tests/fixtures/golden.json");
        let shape: Vec<usize> = v["input_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        Golden {
            shape: [shape[0], shape[1], shape[2], shape[3]],
            input: floats_f32(&v["input"]),
            models: v["models"].clone(),
        }
    })
}

/// Our probabilities (`model::probabilities`, row-major `[batch, classes]`) in golden.json's
/// layout: for a one-output (binary) model, the positive-class probability of each image.
pub fn golden_layout(probs: Vec<f32>, num_outputs: usize) -> Vec<f32> {
    if num_outputs == 1 {
        probs.chunks(2).map(|p| p[1]).collect()
    } else {
        probs
    }
}
