//! The one product rule of a calibrated model: the probability shown is the calibrated one, the
//! threshold is 0.5, and label, band and gauge never contradict each other (the gauge marks
//! the card's threshold, so this is "label is positive ⇔ p ≥ 0.5 ⇔ the band is not
//! leans-negative").

use burn::prelude::*;
use image::{DynamicImage, GrayImage, Luma};
use pneumoscope::calibration::Calibration;
use pneumoscope::card::{Band, ModelCard};
use pneumoscope::model::DenseNetConfig;
use pneumoscope::predict::Pipeline;

fn images() -> Vec<DynamicImage> {
    let mut images: Vec<DynamicImage> = (0..12u32)
        .map(|k| {
            DynamicImage::ImageLuma8(GrayImage::from_fn(48, 40, |x, y| {
                Luma([((x * (k + 3) + y * (13 - k) + k * 17) % 256) as u8])
            }))
        })
        .collect();
    images.push(image::open("tests/data/xray_64.png").unwrap());
    images
}

fn logit(p: f32) -> f32 {
    (p / (1.0 - p)).ln()
}

#[test]
fn calibrated_probability_label_and_band_agree() {
    let device = Device::flex();
    let config = DenseNetConfig::tiny(1);
    let model = config.init(&device);
    let labels = vec!["NORMAL".to_string(), "PNEUMONIA".to_string()];
    let raw_card = ModelCard::new("test", &config, labels, 32);
    let raw_pipeline = Pipeline::new(raw_card.clone(), model.clone(), &device);
    let images = images();
    let raw: Vec<f32> = raw_pipeline
        .analyse_images_blocking(&images)
        .unwrap()
        .iter()
        .map(|p| p.probability)
        .collect();

    // A steep map centred on the median raw score, so the images fall on both sides of 0.5.
    let mut sorted = raw.clone();
    sorted.sort_by(f32::total_cmp);
    let centre = logit(sorted[sorted.len() / 2]);
    let slope = 2000.0;
    let calibration = Calibration {
        method: "platt".into(),
        slope,
        intercept: -slope * centre + 0.01,
        fitted_on: "test".into(),
        ece_before: 0.0,
        ece_after: 0.0,
    };
    let mut card = raw_card;
    card.calibration = Some(calibration.clone());
    card.threshold = 0.5;
    let pipeline = Pipeline::new(card, model, &device);
    let predictions = pipeline.analyse_images_blocking(&images).unwrap();

    let mut sides = [0, 0];
    for (prediction, raw) in predictions.iter().zip(&raw) {
        let p = prediction.probability;
        assert!(
            (p - calibration.apply(*raw)).abs() < 1e-6,
            "{p} vs raw {raw}"
        );
        assert!((prediction.probabilities[0] + prediction.probabilities[1] - 1.0).abs() < 1e-6);
        assert_eq!(prediction.probabilities[1], p);
        let positive = prediction.label == "PNEUMONIA";
        assert_eq!(positive, p >= 0.5, "label {} at p {p}", prediction.label);
        assert_eq!(
            positive,
            prediction.band != Band::LeansNegative,
            "band {:?} at p {p}",
            prediction.band
        );
        sides[usize::from(positive)] += 1;
    }
    assert!(sides[0] > 0 && sides[1] > 0, "both sides of 0.5: {sides:?}");
}

/// The card keeps the calibration through JSON; older cards without one still load.
#[test]
fn calibration_round_trips_and_is_optional() {
    let config = DenseNetConfig::tiny(1);
    let mut card = ModelCard::new("test", &config, vec!["A".into(), "B".into()], 32);
    let plain = ModelCard::from_json(&card.to_json()).unwrap();
    assert_eq!(plain.calibration, None);
    assert!(!card.to_json().contains("calibration"));
    card.calibration = Some(Calibration {
        method: "platt".into(),
        slope: 0.7,
        intercept: -0.3,
        fitted_on: "x".into(),
        ece_before: 0.1,
        ece_after: 0.02,
    });
    assert_eq!(ModelCard::from_json(&card.to_json()).unwrap(), card);
}
