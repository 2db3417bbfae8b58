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
            let t = move |k| state.t(k);
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
            let missing = t(T::NotStated);
            let training = &card.training;
            let metrics = card.metrics.test.as_ref().map(|m| {
                format!(
                    "{} {} · {} {:.3} · {} {:.3} · {} {:.3} · {} {:.3} · {} {:.3} · {} {:.3}",
                    m.images, t(T::Images),
                    t(T::Accuracy), m.accuracy,
                    t(T::Sensitivity), m.sensitivity,
                    t(T::Specificity), m.specificity,
                    t(T::Precision), m.precision,
                    t(T::F1), m.f1,
                    t(T::RocAuc), m.roc_auc
                )
            });
            let ood = match &card.ood {
                Some(o) => format!(
                    "{}; threshold {:.2} ({}; {:.1}% of {} validation X-rays refused); {} · sha256 {}",
                    o.method, o.threshold, o.threshold_rule, o.validation_refused * 100.0, o.validation_images, o.fitted_on, o.sha256
                ),
                None => t(T::OodUnavailable).to_string(),
            };
            let confusion = card.metrics.test.as_ref().map(|m| format!("confusion {:?} ({})", m.confusion, card.labels.join(" / ")));
            view! {
                <dl>
                    <dt>{t(T::Architecture)}</dt><dd>{architecture}</dd>
                    <dt>{t(T::InputSize)}</dt><dd>{format!("{0}×{0}", card.input_size)}</dd>
                    <dt>{t(T::TrainingData)}</dt><dd>{or_not_stated(&training.data, missing)} {(!training.split.is_empty()).then(|| format!(" — {}", training.split))}</dd>
                    <dt>{t(T::Recipe)}</dt><dd>{or_not_stated(&training.recipe, missing)}</dd>
                    <dt>{t(T::TestMetrics)}</dt>
                    <dd data-testid="card-metrics">{metrics.unwrap_or_else(|| t(T::NoMetrics).to_string())}<br/>{confusion}</dd>
                    <dt>{t(T::OodCard)}</dt><dd data-testid="card-ood">{ood}</dd>
                    <dt>{t(T::Threshold)}</dt><dd>{format!("{:.4}", card.threshold)}</dd>
                    <dt>{t(T::WeightsVersion)}</dt><dd>{format!("{} {} ({}, {}, {:.1} MB)", card.name, card.version, card.weights.format, card.weights.dtype, card.weights.bytes as f64 / 1e6)}</dd>
                    <dt>{t(T::WeightsHash)}</dt><dd><code class="hash">{or_not_stated(&card.weights.sha256, missing)}</code></dd>
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
