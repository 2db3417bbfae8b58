//! Reading a saved Keras model: its architecture (the config JSON) and its variables, from a
//! legacy HDF5 file (`model.save("x.h5")`, Keras 2 and 3) or a Keras 3 `.keras` zip
//! (`config.json`, `metadata.json`, `model.weights.h5`). HDF5 is read by `hdf5-pure`, a pure-Rust
//! reader: no C library in the build.

use super::KerasError;
use super::graph::Layer;
use hdf5_pure::{AttrValue, File};
use std::collections::HashMap;
use std::io::Read;

/// A variable: shape and values (f32, row-major as stored).
pub type Variable = (Vec<usize>, Vec<f32>);

const HDF5_SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";
const ZIP_SIGNATURE: &[u8] = b"PK\x03\x04";

/// How the variables are addressed in the file.
enum Layout {
    /// `model_weights/<top-level layer>/<weight name>`, weight names such as
    /// `conv1_conv/kernel` or (Keras 2) `conv1/conv/kernel:0`, listed in each group's
    /// `weight_names` attribute.
    Legacy,
    /// `layers/<saved name>/…/vars/<index>`, saved names being class names with counters
    /// (`conv2d`, `conv2d_1`, …; see `graph::Layer::saved_path`).
    Native,
}

pub struct Archive {
    /// The model's config (`{"class_name": …, "config": …}`).
    pub config: serde_json::Value,
    /// The Keras version that saved it ("" when not recorded).
    pub keras_version: String,
    weights: File,
    layout: Layout,
}

fn read_error(why: impl std::fmt::Display) -> KerasError {
    KerasError::Read(why.to_string())
}

/// A string attribute, however h5py stored it (fixed or variable length, UTF-8 or ASCII).
fn attr_string(value: &AttrValue) -> Option<String> {
    match value {
        AttrValue::String(s)
        | AttrValue::AsciiString(s)
        | AttrValue::VarLenString(s)
        | AttrValue::VarLenAsciiString(s) => Some(s.clone()),
        AttrValue::StringSized { value, .. } | AttrValue::AsciiStringSized { value, .. } => {
            Some(value.clone())
        }
        _ => None,
    }
}

/// A list-of-strings attribute (Keras' `weight_names`).
fn attr_strings(value: &AttrValue) -> Option<Vec<String>> {
    match value {
        AttrValue::StringArray(v)
        | AttrValue::AsciiStringArray(v)
        | AttrValue::VarLenStringArray(v)
        | AttrValue::VarLenAsciiStringArray(v)
        | AttrValue::VarLenAsciiCharArray(v) => Some(v.clone()),
        AttrValue::StringArraySized { values, .. }
        | AttrValue::AsciiStringArraySized { values, .. } => Some(values.clone()),
        other => attr_string(other).map(|s| vec![s]),
    }
}

impl Archive {
    /// Reads a `.h5` or `.keras` file's bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, KerasError> {
        if bytes.starts_with(ZIP_SIGNATURE) {
            Self::from_zip(bytes)
        } else if bytes.starts_with(HDF5_SIGNATURE) {
            Self::from_hdf5(bytes)
        } else {
            Err(KerasError::NotKeras(
                "neither an HDF5 file (.h5) nor a zip archive (.keras)".into(),
            ))
        }
    }

    fn from_hdf5(bytes: Vec<u8>) -> Result<Self, KerasError> {
        let file = File::from_bytes(bytes).map_err(read_error)?;
        let attrs = file.root().attrs().map_err(read_error)?;
        let config = attrs
            .get("model_config")
            .and_then(attr_string)
            .ok_or_else(|| {
                KerasError::NotKeras(
                    "the HDF5 file has no 'model_config' attribute: it holds weights only \
                 (save_weights) or is not a Keras model; save the whole model with model.save()"
                        .into(),
                )
            })?;
        let config = serde_json::from_str(&config)
            .map_err(|e| read_error(format!("the model config is not JSON: {e}")))?;
        let keras_version = attrs
            .get("keras_version")
            .and_then(attr_string)
            .unwrap_or_default();
        Ok(Self {
            config,
            keras_version,
            weights: file,
            layout: Layout::Legacy,
        })
    }

    fn from_zip(bytes: Vec<u8>) -> Result<Self, KerasError> {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| read_error(format!("the .keras archive is damaged: {e}")))?;
        let mut entry = |name: &str| -> Result<Vec<u8>, KerasError> {
            let mut file = zip
                .by_name(name)
                .map_err(|_| KerasError::NotKeras(format!("the .keras archive has no {name}")))?;
            let mut out = Vec::new();
            file.read_to_end(&mut out)
                .map_err(|e| read_error(format!("reading {name} in the archive: {e}")))?;
            Ok(out)
        };
        let config: serde_json::Value = serde_json::from_slice(&entry("config.json")?)
            .map_err(|e| read_error(format!("config.json is not JSON: {e}")))?;
        let keras_version = entry("metadata.json")
            .ok()
            .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m).ok())
            .and_then(|m| m["keras_version"].as_str().map(String::from))
            .unwrap_or_default();
        let weights = File::from_bytes(entry("model.weights.h5")?).map_err(read_error)?;
        Ok(Self {
            config,
            keras_version,
            weights,
            layout: Layout::Native,
        })
    }

    /// The variables of `layer`, by name (`kernel`, `bias`, `gamma`, `beta`, `moving_mean`,
    /// `moving_variance`); empty for a layer without any.
    pub fn variables(&self, layer: &Layer) -> Result<HashMap<String, Variable>, KerasError> {
        match self.layout {
            Layout::Native => self.native_variables(layer),
            Layout::Legacy => self.legacy_variables(layer),
        }
    }

    fn read(&self, path: &str) -> Result<Variable, KerasError> {
        let dataset = self.weights.dataset(path).map_err(read_error)?;
        let shape = dataset.shape().map_err(read_error)?;
        let values = dataset.read_f32().map_err(read_error)?;
        Ok((shape.into_iter().map(|d| d as usize).collect(), values))
    }

    fn native_variables(&self, layer: &Layer) -> Result<HashMap<String, Variable>, KerasError> {
        let names = layer.variable_names();
        let mut out = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            let path = format!("{}/vars/{i}", layer.saved_path());
            match self.read(&path) {
                Ok(v) => {
                    out.insert(name.to_string(), v);
                }
                Err(_) => {
                    return Err(KerasError::MissingWeight {
                        layer: layer.name.clone(),
                        variable: name.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn legacy_variables(&self, layer: &Layer) -> Result<HashMap<String, Variable>, KerasError> {
        let group_path = format!("model_weights/{}", layer.top_level_name());
        let group = self
            .weights
            .group(&group_path)
            .map_err(|_| KerasError::MissingWeight {
                layer: layer.name.clone(),
                variable: "(its weights group)".into(),
            })?;
        let attrs = group.attrs().map_err(read_error)?;
        let names = attrs
            .get("weight_names")
            .and_then(attr_strings)
            .unwrap_or_default();
        let mut out = HashMap::new();
        for weight in names {
            let clean = weight.trim_end_matches(":0");
            let Some((owner, variable)) = clean.rsplit_once('/') else {
                continue;
            };
            if owner == layer.name || owner.ends_with(&format!("/{}", layer.name)) {
                out.insert(
                    variable.to_string(),
                    self.read(&format!("{group_path}/{weight}"))?,
                );
            }
        }
        for name in layer.variable_names() {
            if !out.contains_key(name) {
                return Err(KerasError::MissingWeight {
                    layer: layer.name.clone(),
                    variable: name.to_string(),
                });
            }
        }
        Ok(out)
    }
}
