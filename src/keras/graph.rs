//! The model's layers from its Keras config, in call order, nested models (a `Sequential`
//! holding `DenseNet121(include_top=False)`, say) expanded in place.

use super::KerasError;
use serde_json::Value;

/// One layer (never a model) of the saved model.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Keras class name: `Conv2D`, `BatchNormalization`, `Dense`, …
    pub class: String,
    /// The layer's name in the config (`conv1_conv`, or Keras 2's `conv1/conv`).
    pub name: String,
    pub config: Value,
    /// The models holding it, outermost first: (config name, saved name) of each.
    containers: Vec<(String, String)>,
    /// Its name in a `.keras` weights file (see [`Self::saved_path`]).
    saved_name: String,
}

/// Keras' `naming.to_snake_case` of a class name: `BatchNormalization` → `batch_normalization`,
/// `Conv2D` → `conv2d`.
fn snake_case(class: &str) -> String {
    let chars: Vec<char> = class.chars().filter(|c| c.is_alphanumeric()).collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let previous_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
        if c.is_ascii_uppercase() && i > 0 && (previous_lower || next_lower) {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

const MODEL_CLASSES: [&str; 4] = ["Functional", "Model", "Sequential", "DenseNet"];

impl Layer {
    /// The path of its variables in a `.keras` weights file: Keras 3 names each member of a
    /// model by its class in snake case, numbered per class in order (`conv2d`, `conv2d_1`, …),
    /// not by its config name: `layers/functional/layers/conv2d_3`.
    pub fn saved_path(&self) -> String {
        let mut path = String::from("layers");
        for (_, saved) in self.containers.iter().skip(1) {
            path.push_str(&format!("/{saved}/layers"));
        }
        format!("{path}/{}", self.saved_name)
    }

    /// The name of its outermost enclosing layer in the top model (its legacy HDF5 group).
    pub fn top_level_name(&self) -> &str {
        self.containers
            .get(1)
            .map(|(name, _)| name.as_str())
            .unwrap_or(&self.name)
    }

    /// Its variables in the order Keras saves them (trainable, then non-trainable).
    pub fn variable_names(&self) -> Vec<&'static str> {
        let flag = |key: &str| self.config[key].as_bool().unwrap_or(true);
        match self.class.as_str() {
            "Conv2D" | "Dense" => {
                if flag("use_bias") {
                    vec!["kernel", "bias"]
                } else {
                    vec!["kernel"]
                }
            }
            "BatchNormalization" => {
                let mut names = Vec::new();
                if flag("scale") {
                    names.push("gamma");
                }
                if flag("center") {
                    names.push("beta");
                }
                names.extend(["moving_mean", "moving_variance"]);
                names
            }
            _ => Vec::new(),
        }
    }
}

/// The config's layers, flattened in order.
pub fn layers(config: &Value) -> Result<Vec<Layer>, KerasError> {
    let mut out = Vec::new();
    let name = config["config"]["name"]
        .as_str()
        .unwrap_or("model")
        .to_string();
    walk(config, &mut vec![(name, String::new())], &mut out)?;
    Ok(out)
}

fn walk(
    model: &Value,
    containers: &mut Vec<(String, String)>,
    out: &mut Vec<Layer>,
) -> Result<(), KerasError> {
    let members = model["config"]["layers"].as_array().ok_or_else(|| {
        KerasError::NotKeras(format!(
            "the config of '{}' lists no layers",
            containers.last().map(|c| c.0.as_str()).unwrap_or("")
        ))
    })?;
    let mut used: std::collections::HashMap<String, usize> = Default::default();
    for member in members {
        let class = member["class_name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = member["config"]["name"]
            .as_str()
            .or_else(|| member["name"].as_str())
            .unwrap_or_default()
            .to_string();
        let base = snake_case(&class);
        let count = used.entry(base.clone()).or_insert(0);
        let saved_name = if *count == 0 {
            base.clone()
        } else {
            format!("{base}_{count}")
        };
        *count += 1;
        if MODEL_CLASSES.contains(&class.as_str()) && member["config"]["layers"].is_array() {
            containers.push((name, saved_name));
            walk(member, containers, out)?;
            containers.pop();
        } else {
            out.push(Layer {
                class,
                name,
                config: member["config"].clone(),
                containers: containers.clone(),
                saved_name,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_become_keras_snake_case() {
        for (class, snake) in [
            ("BatchNormalization", "batch_normalization"),
            ("Conv2D", "conv2d"),
            ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("Dense", "dense"),
            ("Functional", "functional"),
            ("ZeroPadding2D", "zero_padding2d"),
        ] {
            assert_eq!(snake_case(class), snake);
        }
    }
}
