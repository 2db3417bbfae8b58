//! The model card: what the model is, what it was trained on, how it measured, which weights.

use super::i18n::T;
use super::use_state;
use crate::card::ModelCard;
use leptos::prelude::*;

fn or_not_stated(text: &str, missing: &'static str) -> String {
    if text.trim().is_empty() {
        missing.to_string()
    } else {
        text.to_string()
    }
}

#[component]
pub fn ModelCardPanel() -> impl IntoView {
    let state = use_state();
    let body = move || {
        state.card.get().map(|card: ModelCard| {
            let text = move |key| state.t(key);
            let arch = &card.architecture;
            let architecture = format!(
                "{}{} (growth {}, blocks {:?}, {} initial features, bn_size {}, {} output{})",
                if arch.family.eq_ignore_ascii_case("densenet") { "DenseNet" } else { &arch.family },
                arch.depth,
                arch.growth_rate,
                arch.block_config,
                arch.num_init_features,
                arch.bn_size,
                arch.num_outputs,
                if arch.num_outputs == 1 { ", sigmoid" } else { "s, softmax" }
            );
            let missing = text(T::NotStated);
            let training = &card.training;
            let metrics = card.metrics.test.as_ref().map(|m| {
                format!(
                    "{} {} · {} {:.3} · {} {:.3} · {} {:.3} · {} {:.3} · {} {:.3} · {} {:.3}",
                    m.images, text(T::Images),
                    text(T::Accuracy), m.accuracy,
                    text(T::Sensitivity), m.sensitivity,
                    text(T::Specificity), m.specificity,
                    text(T::Precision), m.precision,
                    text(T::F1), m.f1,
                    text(T::RocAuc), m.roc_auc
                )
            });
            let ood = match &card.ood {
                Some(o) => format!(
                    "{}; threshold {:.2} ({}; {:.1}% of {} validation X-rays refused); {} · sha256 {}",
                    o.method, o.threshold, o.threshold_rule, o.validation_refused * 100.0, o.validation_images, o.fitted_on, o.sha256
                ),
                None => text(T::OodUnavailable).to_string(),
            };
            let calibration = match &card.calibration {
                Some(c) => format!(
                    "{}: p = σ({:.4} · logit(raw) + {:.4}); {}; ECE {:.3} → {:.3}",
                    c.method, c.slope, c.intercept, c.fitted_on, c.ece_before, c.ece_after
                ),
                None => text(T::Uncalibrated).to_string(),
            };
            let confusion = card.metrics.test.as_ref().map(|m| format!("confusion {:?} ({})", m.confusion, card.labels.join(" / ")));
            view! {
                <dl>
                    <dt>{text(T::Architecture)}</dt><dd>{architecture}</dd>
                    <dt>{text(T::InputSize)}</dt><dd>{format!("{0}×{0}", card.input_size)}</dd>
                    <dt>{text(T::TrainingData)}</dt><dd>{or_not_stated(&training.data, missing)} {(!training.split.is_empty()).then(|| format!(" — {}", training.split))}</dd>
                    <dt>{text(T::Recipe)}</dt><dd>{or_not_stated(&training.recipe, missing)}</dd>
                    <dt>{text(T::TestMetrics)}</dt>
                    <dd data-testid="card-metrics">{metrics.unwrap_or_else(|| text(T::NoMetrics).to_string())}<br/>{confusion}</dd>
                    <dt>{text(T::OodCard)}</dt><dd data-testid="card-ood">{ood}</dd>
                    <dt>{text(T::Threshold)}</dt><dd>{format!("{:.4}", card.threshold)}</dd>
                    <dt>{text(T::Calibration)}</dt><dd data-testid="card-calibration">{calibration}</dd>
                    <dt>{text(T::WeightsVersion)}</dt><dd>{format!("{} {} ({}, {}, {:.1} MB)", card.name, card.version, card.weights.format, card.weights.dtype, card.weights.bytes as f64 / 1e6)}</dd>
                    <dt>{text(T::WeightsHash)}</dt><dd><code class="hash">{or_not_stated(&card.weights.sha256, missing)}</code></dd>
                </dl>
            }
        })
    };
    view! {
        <details class="panel" data-testid="model-card" open>
            <summary>{move || state.t(T::CardTitle)}</summary>
            {body}
        </details>
    }
}
