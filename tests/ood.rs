//! The OOD statistics against numpy (`tests/fixtures/make_ood_fixture.py` → `ood_pca.json`):
//! PPCA fit (mean, top-k variances and directions, residual variance) and the distance.
//! Tolerances: relative 1e-5 on variances and the residual variance, directions equal up to sign
//! (|cos| > 1 − 1e-6), relative 1e-4 on distances. The f32 storage of the statistics is the limit,
//! not the algorithm (f64 inside): the residual term divides by a small σ².

mod common;

use common::fixtures::{floats_f64, read_json};
use common::float::close;
use pneumoscope::ood::{OodStats, ppca};

fn data(n: usize, d: usize, offset: usize) -> Vec<Vec<f32>> {
    (offset..offset + n)
        .map(|i| {
            let i = i as f64;
            (0..d)
                .map(|j| {
                    let j = j as f64;
                    let mut x = 0.0;
                    for l in 0..6 {
                        let l = l as f64;
                        x += (1.7 * i * (l + 1.0) + l).sin()
                            * (0.9 * j * (l + 1.0) + 0.3 * l).cos()
                            * (6.0 - l);
                    }
                    (x + 0.1 * (12.9898 * i + 78.233 * j).sin() + 0.1 * j) as f32
                })
                .collect()
        })
        .collect()
}

#[test]
fn ppca_fit_and_distance_match_numpy() {
    let reference = read_json("tests/fixtures/ood_pca.json");
    let [n, d, k] = ["n", "d", "k"].map(|key| reference[key].as_u64().unwrap() as usize);
    let stats: OodStats = ppca::fit(&data(n, d, 0), k).unwrap();

    for (a, b) in stats.mean.iter().zip(floats_f64(&reference["mean"])) {
        assert!(
            close(*a as f64, b, 1e-5) || (*a as f64 - b).abs() < 1e-6,
            "mean {a} vs {b}"
        );
    }
    for (a, b) in stats
        .variances
        .iter()
        .zip(floats_f64(&reference["variances"]))
    {
        assert!(close(*a as f64, b, 1e-5), "variance {a} vs numpy {b}");
    }
    assert!(
        close(
            stats.residual_variance as f64,
            reference["residual_variance"].as_f64().unwrap(),
            1e-5
        ),
        "residual variance {}",
        stats.residual_variance
    );
    for (row, expected) in stats
        .components
        .chunks(d)
        .zip(reference["components"].as_array().unwrap())
    {
        let cos: f64 = row
            .iter()
            .zip(floats_f64(expected))
            .map(|(a, b)| *a as f64 * b)
            .sum();
        assert!(
            cos.abs() > 1.0 - 1e-6,
            "direction differs from numpy's: |cos| = {}",
            cos.abs()
        );
    }

    let mut probes = data(
        reference["probes"].as_u64().unwrap() as usize,
        d,
        reference["probe_offset"].as_u64().unwrap() as usize,
    );
    probes.push(vec![3.0; d]);
    probes.push(vec![0.0; d]);
    for (probe, expected) in probes.iter().zip(floats_f64(&reference["distances"])) {
        let got = stats.distance(probe) as f64;
        assert!(
            close(got, expected, 1e-4),
            "distance {got} vs numpy {expected}"
        );
    }
}
