//! The model card: the one source of truth for input size, normalisation, labels, threshold,
//! interpretation bands and the measured metrics that travel with a set of weights.

use crate::calibration::Calibration;
use crate::model::DenseNetConfig;
use crate::subgroups::FamilySpecificity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelCard {
    pub name: String,
    pub version: String,
    pub architecture: Architecture,
    /// Square side in pixels the image is resized to.
    pub input_size: usize,
    pub normalisation: Normalisation,
    /// Class names in output order; for two classes the single output is `labels[1]`'s logit.
    pub labels: Vec<String>,
    pub positive_label: String,
    /// Decision threshold on the positive (shown, i.e. calibrated) probability: 0.5 for a
    /// calibrated model, else chosen on validation data.
    pub threshold: f32,
    /// The map from the model's raw probability to the one shown; absent on older cards and
    /// uncalibrated models (then the raw probability is shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    pub bands: Bands,
    pub training: Training,
    #[serde(default)]
    pub metrics: Metrics,
    pub weights: WeightsInfo,
    /// Out-of-distribution statistics; absent on older cards (then nothing is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ood: Option<OodInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Architecture {
    pub family: String,
    pub depth: usize,
    pub growth_rate: usize,
    pub block_config: Vec<usize>,
    pub num_init_features: usize,
    pub bn_size: usize,
    pub num_outputs: usize,
    /// Hidden dense layers' widths (imported Keras heads); absent for our own models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<usize>,
}

impl Architecture {
    pub fn from_config(config: &DenseNetConfig) -> Self {
        let layers: usize = config.block_config.iter().sum();
        Self {
            family: "densenet".into(),
            // Two convs per dense layer, one per transition, the stem conv and the classifier,
            // plus any hidden dense layers.
            depth: 2 * layers + config.block_config.len() + 1 + config.hidden_widths().len(),
            growth_rate: config.growth_rate,
            block_config: config.block_config.clone(),
            num_init_features: config.num_init_features,
            bn_size: config.bn_size,
            num_outputs: config.num_outputs,
            hidden: config.hidden_widths().to_vec(),
        }
    }

    pub fn config(&self) -> DenseNetConfig {
        DenseNetConfig::new()
            .with_growth_rate(self.growth_rate)
            .with_block_config(self.block_config.clone())
            .with_num_init_features(self.num_init_features)
            .with_bn_size(self.bn_size)
            .with_num_outputs(self.num_outputs)
            .with_hidden((!self.hidden.is_empty()).then(|| self.hidden.clone()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Normalisation {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalisation {
    /// torchvision's ImageNet statistics, used by every ImageNet-initialised model.
    pub fn imagenet() -> Self {
        Self {
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }
}

/// Probability bands used to word the result for a clinician.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bands {
    /// At or above: strong signal for the positive class.
    pub strong: f32,
    /// From here up to `grey_high`: the model is uncertain.
    pub grey_low: f32,
    pub grey_high: f32,
    /// Below: leans towards the negative class.
    pub leans_negative: f32,
}

impl Default for Bands {
    fn default() -> Self {
        Self {
            strong: 0.80,
            grey_low: 0.55,
            grey_high: 0.75,
            leans_negative: 0.50,
        }
    }
}

/// How a probability reads for a clinician.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Strong,
    Moderate,
    GreyZone,
    Borderline,
    LeansNegative,
}

impl Band {
    /// The name the CLI and the JSON use (`grey_zone`); the app translates the variant instead.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Strong => "strong",
            Band::Moderate => "moderate",
            Band::GreyZone => "grey_zone",
            Band::Borderline => "borderline",
            Band::LeansNegative => "leans_negative",
        }
    }
}

impl Bands {
    pub fn classify(&self, probability: f32) -> Band {
        if probability >= self.strong {
            Band::Strong
        } else if probability > self.grey_high {
            Band::Moderate
        } else if probability >= self.grey_low {
            Band::GreyZone
        } else if probability >= self.leans_negative {
            Band::Borderline
        } else {
            Band::LeansNegative
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Training {
    pub data: String,
    pub split: String,
    pub recipe: String,
    pub epochs: f32,
    pub compute: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    /// Measured on the official test split with the exported (quantized) weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestMetrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<TestMetrics>,
    /// The test normals' specificity by file-name family, at the card's threshold (the test
    /// set's shift sits in the `NORMAL2-IM` family).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub test_normals_by_family: BTreeMap<String, FamilySpecificity>,
    /// Expected calibration error of the shown probability on test (10 bins, class-balanced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_calibration_error: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestMetrics {
    pub images: usize,
    pub accuracy: f64,
    pub sensitivity: f64,
    pub specificity: f64,
    pub precision: f64,
    pub f1: f64,
    pub roc_auc: f64,
    /// Rows: true class; columns: predicted class, in `labels` order.
    pub confusion: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WeightsInfo {
    pub file: String,
    pub format: String,
    pub dtype: String,
    pub bytes: usize,
    pub sha256: String,
}

impl WeightsInfo {
    /// The card's entry for the int8 container `bytes`, saved as `file`.
    pub fn int8(file: String, bytes: &[u8]) -> Self {
        Self {
            file,
            format: crate::weights::codec::FORMAT_INT8.into(),
            dtype: "int8 conv kernels (per-output-channel scales), f32 batch-norm and classifier"
                .into(),
            bytes: bytes.len(),
            sha256: crate::tensor_bytes::sha256_hex(bytes),
        }
    }
}

/// The OOD statistics file next to the weights (see `crate::ood`) and its refusal threshold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OodInfo {
    pub file: String,
    pub format: String,
    pub bytes: usize,
    pub sha256: String,
    /// What the distance is, in words.
    pub method: String,
    /// Principal directions kept (`k`).
    pub components: usize,
    /// Inputs whose distance exceeds this are refused.
    pub threshold: f32,
    /// The images the statistics were fitted on.
    pub fitted_on: String,
    /// How the threshold was chosen, in words.
    pub threshold_rule: String,
    pub validation_images: usize,
    /// Share of the validation X-rays refused at `threshold`.
    pub validation_refused: f64,
}

impl ModelCard {
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a model card always serialises")
    }

    /// A card for a freshly built model, before training has filled in the facts.
    pub fn new(
        name: &str,
        config: &DenseNetConfig,
        labels: Vec<String>,
        input_size: usize,
    ) -> Self {
        let positive_label = labels.last().cloned().unwrap_or_default();
        Self {
            name: name.into(),
            version: "0".into(),
            architecture: Architecture::from_config(config),
            input_size,
            normalisation: Normalisation::imagenet(),
            labels,
            positive_label,
            threshold: 0.5,
            bands: Bands::default(),
            training: Training::default(),
            metrics: Metrics::default(),
            weights: WeightsInfo::default(),
            ood: None,
            calibration: None,
        }
    }

    /// The OOD statistics file name that goes with this card's weights file.
    pub fn ood_file_name(&self) -> String {
        let stem = self
            .weights
            .file
            .trim_end_matches(".safetensors")
            .trim_end_matches(".int8")
            .trim_end_matches(".f32");
        let stem = if stem.is_empty() { "weights" } else { stem };
        format!("{stem}.ood.safetensors")
    }

    /// Index of the positive class in `labels`.
    pub fn positive_index(&self) -> usize {
        self.labels
            .iter()
            .position(|l| *l == self.positive_label)
            .unwrap_or(self.labels.len() - 1)
    }

    /// The probabilities to show for the model's raw ones (the card's calibration, if any).
    pub fn shown_probabilities(&self, raw: &[f32]) -> Vec<f32> {
        match &self.calibration {
            Some(calibration) => calibration.apply_to_row(raw, self.positive_index()),
            None => raw.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_configs_written_before_hidden_layers_still_load() {
        let old = r#"{"growth_rate":32,"block_config":[6,12,24,16],"num_init_features":64,"bn_size":4,"num_outputs":1}"#;
        let config: DenseNetConfig = serde_json::from_str(old).unwrap();
        assert_eq!(config, DenseNetConfig::densenet121(1));
        assert!(config.hidden_widths().is_empty());
        let imported = DenseNetConfig::tiny(2).with_hidden(Some(vec![16]));
        let arch = Architecture::from_config(&imported);
        assert_eq!(arch.hidden, vec![16]);
        assert_eq!(arch.config(), imported);
        let plain = Architecture::from_config(&DenseNetConfig::tiny(1));
        assert!(!serde_json::to_string(&plain).unwrap().contains("hidden"));
    }

    #[test]
    fn densenet121_depth_is_121() {
        assert_eq!(
            Architecture::from_config(&DenseNetConfig::densenet121(1)).depth,
            121
        );
        assert_eq!(
            Architecture::from_config(&DenseNetConfig::densenet169(1)).depth,
            169
        );
        assert_eq!(
            Architecture::from_config(&DenseNetConfig::densenet201(1)).depth,
            201
        );
    }

    #[test]
    fn bands_follow_the_card() {
        let b = Bands::default();
        assert_eq!(b.classify(0.95), Band::Strong);
        assert_eq!(b.classify(0.78), Band::Moderate);
        assert_eq!(b.classify(0.60), Band::GreyZone);
        assert_eq!(b.classify(0.52), Band::Borderline);
        assert_eq!(b.classify(0.10), Band::LeansNegative);
        for band in [
            Band::Strong,
            Band::Moderate,
            Band::GreyZone,
            Band::Borderline,
            Band::LeansNegative,
        ] {
            assert_eq!(
                serde_json::to_value(band).unwrap(),
                band.as_str(),
                "as_str is serde's name"
            );
        }
    }

    #[test]
    fn card_round_trips_through_json() {
        let card = ModelCard::new(
            "t",
            &DenseNetConfig::tiny(1),
            vec!["NORMAL".into(), "PNEUMONIA".into()],
            64,
        );
        assert_eq!(ModelCard::from_json(&card.to_json()).unwrap(), card);
        assert_eq!(card.architecture.config(), DenseNetConfig::tiny(1));
    }

    #[test]
    fn cards_without_ood_still_parse_and_name_their_stats_file() {
        let mut card = ModelCard::new(
            "t",
            &DenseNetConfig::tiny(1),
            vec!["NORMAL".into(), "PNEUMONIA".into()],
            64,
        );
        let json = card.to_json();
        assert!(!json.contains("\"ood\""));
        assert_eq!(ModelCard::from_json(&json).unwrap().ood, None);
        card.weights.file = "pneumoscope-densenet121-v0.2.0.int8.safetensors".into();
        assert_eq!(
            card.ood_file_name(),
            "pneumoscope-densenet121-v0.2.0.ood.safetensors"
        );
        card.ood = Some(OodInfo {
            threshold: 40.0,
            ..Default::default()
        });
        assert_eq!(ModelCard::from_json(&card.to_json()).unwrap(), card);
    }
}
