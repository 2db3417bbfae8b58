//! The OOD statistics' maths: probabilistic PCA of training features, and the threshold.
//!
//! The covariance (`1/(n−1)`, f64) is decomposed by subspace iteration with Rayleigh–Ritz
//! (cyclic Jacobi on the small projected matrix), so only the top `k` eigenpairs are computed;
//! `σ²` comes from the trace. Checked against numpy's `eigh` by `tests/ood.rs`.

use super::OodStats;

/// Why the statistics cannot be fitted to the features given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PpcaError {
    #[error("need at least 2 feature vectors, got {0}")]
    TooFew(usize),
    #[error("feature vectors of different lengths")]
    Ragged,
    #[error("{k} components for {n} vectors of {d} features: need 0 < k < min(n, d)")]
    Components { k: usize, n: usize, d: usize },
    #[error("the features do not vary at all")]
    Constant,
}

/// Fits PPCA with `k` directions to `features` (each of the same length `d > k`).
pub fn fit(features: &[Vec<f32>], k: usize) -> Result<OodStats, PpcaError> {
    let n = features.len();
    let d = features.first().map_or(0, Vec::len);
    if n < 2 || d == 0 {
        return Err(PpcaError::TooFew(n));
    }
    if features.iter().any(|f| f.len() != d) {
        return Err(PpcaError::Ragged);
    }
    if k == 0 || k >= d || k >= n {
        return Err(PpcaError::Components { k, n, d });
    }
    let mut mean = vec![0f64; d];
    for f in features {
        for (m, x) in mean.iter_mut().zip(f) {
            *m += *x as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let cov = covariance(features, &mean);
    let trace: f64 = (0..d).map(|i| cov[i * d + i]).sum();
    // NaN too: the features are unusable.
    if trace.is_nan() || trace <= 0.0 {
        return Err(PpcaError::Constant);
    }
    let (values, vectors) = top_eigenpairs(&cov, d, k);
    let kept: f64 = values.iter().sum();
    // Directions with no variance at all would divide by zero: floor every variance at a tiny
    // fraction of the average one.
    let floor = 1e-6 * trace / d as f64;
    let residual = ((trace - kept) / (d - k) as f64).max(floor);
    Ok(OodStats {
        mean: mean.iter().map(|m| *m as f32).collect(),
        components: vectors.iter().map(|v| *v as f32).collect(),
        variances: values.iter().map(|v| v.max(floor) as f32).collect(),
        residual_variance: residual as f32,
    })
}

/// Sample covariance `d × d` (row-major), `1/(n−1)`.
fn covariance(features: &[Vec<f32>], mean: &[f64]) -> Vec<f64> {
    let d = mean.len();
    let mut cov = vec![0f64; d * d];
    let mut centred = vec![0f64; d];
    for f in features {
        for ((c, x), m) in centred.iter_mut().zip(f).zip(mean) {
            *c = *x as f64 - m;
        }
        for i in 0..d {
            let ci = centred[i];
            if ci == 0.0 {
                continue;
            }
            let row = &mut cov[i * d..i * d + i + 1];
            for (r, cj) in row.iter_mut().zip(&centred[..=i]) {
                *r += ci * cj;
            }
        }
    }
    let scale = 1.0 / (features.len() - 1) as f64;
    for i in 0..d {
        for j in 0..=i {
            let v = cov[i * d + j] * scale;
            cov[i * d + j] = v;
            cov[j * d + i] = v;
        }
    }
    cov
}

/// The `k` largest eigenvalues of the symmetric `d × d` matrix `a` (descending) and their unit
/// eigenvectors (`k × d`, row-major, sign fixed so the largest-magnitude entry is positive).
fn top_eigenpairs(a: &[f64], d: usize, k: usize) -> (Vec<f64>, Vec<f64>) {
    let p = (k + 16).min(d);
    if p == d {
        let (values, vectors) = jacobi(a, d);
        return take_top(values, vectors, d, k);
    }
    // Deterministic start: a fixed pseudo-random block (xorshift), orthonormalised.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut q: Vec<f64> = (0..p * d)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    orthonormalise(&mut q, d);
    let mut previous = vec![0f64; k];
    for iteration in 0..2000 {
        q = multiply_rows(a, &q, d);
        orthonormalise(&mut q, d);
        if iteration % 10 == 9 {
            let (values, _) = rayleigh_ritz(a, &q, d);
            let top: Vec<f64> = values[..k].to_vec();
            let converged = top
                .iter()
                .zip(&previous)
                .all(|(v, w)| (v - w).abs() <= 1e-12 * top[0].abs().max(1e-300));
            previous = top;
            if converged {
                break;
            }
        }
    }
    let (values, vectors) = rayleigh_ritz(a, &q, d);
    let mut vectors = vectors;
    vectors.truncate(k * d);
    (values[..k].to_vec(), vectors)
}

/// Rows of `q` (each of length `d`) multiplied by the symmetric `a`.
fn multiply_rows(a: &[f64], q: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0f64; q.len()];
    for (row, o) in q.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        for (i, oi) in o.iter_mut().enumerate() {
            *oi = a[i * d..(i + 1) * d]
                .iter()
                .zip(row)
                .map(|(x, y)| x * y)
                .sum();
        }
    }
    out
}

/// Modified Gram–Schmidt on the rows of `q`, twice for stability.
fn orthonormalise(q: &mut [f64], d: usize) {
    let rows = q.len() / d;
    for _ in 0..2 {
        for i in 0..rows {
            for j in 0..i {
                let (done, rest) = q.split_at_mut(i * d);
                let (qj, qi) = (&done[j * d..(j + 1) * d], &mut rest[..d]);
                let dot: f64 = qi.iter().zip(qj).map(|(x, y)| x * y).sum();
                qi.iter_mut().zip(qj).for_each(|(x, y)| *x -= dot * y);
            }
            let qi = &mut q[i * d..(i + 1) * d];
            let norm = qi.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm > 0.0 {
                qi.iter_mut().for_each(|x| *x /= norm);
            }
        }
    }
}

/// Eigenpairs of `a` restricted to the row space of `q` (descending), vectors in full space.
fn rayleigh_ritz(a: &[f64], q: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let p = q.len() / d;
    let aq = multiply_rows(a, q, d);
    let mut t = vec![0f64; p * p];
    for i in 0..p {
        for j in 0..p {
            t[i * p + j] = q[i * d..(i + 1) * d]
                .iter()
                .zip(&aq[j * d..(j + 1) * d])
                .map(|(x, y)| x * y)
                .sum();
        }
    }
    for i in 0..p {
        for j in 0..i {
            let v = 0.5 * (t[i * p + j] + t[j * p + i]);
            t[i * p + j] = v;
            t[j * p + i] = v;
        }
    }
    let (values, small) = jacobi(&t, p);
    // Full-space vectors: row r = Σ_i small[r][i] · q_i.
    let mut vectors = vec![0f64; p * d];
    for r in 0..p {
        let out = &mut vectors[r * d..(r + 1) * d];
        for i in 0..p {
            let w = small[r * p + i];
            out.iter_mut()
                .zip(&q[i * d..(i + 1) * d])
                .for_each(|(o, x)| *o += w * x);
        }
    }
    take_top(values, vectors, d, p)
}

/// Sorts eigenpairs by descending value, keeps `k`, fixes the signs.
fn take_top(values: Vec<f64>, vectors: Vec<f64>, d: usize, k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let mut out_values = Vec::with_capacity(k);
    let mut out_vectors = Vec::with_capacity(k * d);
    for &i in order.iter().take(k) {
        out_values.push(values[i]);
        let v = &vectors[i * d..(i + 1) * d];
        let biggest = v
            .iter()
            .copied()
            .fold(0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        let sign = if biggest < 0.0 { -1.0 } else { 1.0 };
        out_vectors.extend(v.iter().map(|x| x * sign));
    }
    (out_values, out_vectors)
}

/// Cyclic Jacobi eigen-decomposition of a symmetric `n × n` matrix: values and row eigenvectors.
fn jacobi(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0f64; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * norm.max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                // Eigenvectors as rows: row p and row q of v.
                for k in 0..n {
                    let (vp, vq) = (v[p * n + k], v[q * n + k]);
                    v[p * n + k] = c * vp - s * vq;
                    v[q * n + k] = s * vp + c * vq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// The refusal threshold: the smallest distance among `distances` that leaves at most
/// `max_refused` of them above it (e.g. 0.01 → at most 1 % of validation X-rays refused).
pub fn threshold(distances: &[f32], max_refused: f64) -> f32 {
    let mut sorted: Vec<f32> = distances
        .iter()
        .copied()
        .filter(|d| d.is_finite())
        .collect();
    sorted.sort_by(f32::total_cmp);
    if sorted.is_empty() {
        return f32::INFINITY;
    }
    let n = sorted.len();
    let allowed = (max_refused.clamp(0.0, 1.0) * n as f64).floor() as usize;
    sorted[n - 1 - allowed.min(n - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_diagonalises_a_small_matrix() {
        let a = [2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 5.0];
        let (values, _) = take_top(jacobi(&a, 3).0, jacobi(&a, 3).1, 3, 3);
        for (v, e) in values.iter().zip([5.0, 3.0, 1.0]) {
            assert!((v - e).abs() < 1e-12, "{values:?}");
        }
    }

    #[test]
    fn threshold_refuses_at_most_the_allowed_share() {
        let d: Vec<f32> = (1..=200).map(|i| i as f32).collect();
        let t = threshold(&d, 0.01);
        assert_eq!(t, 198.0);
        assert_eq!(d.iter().filter(|x| **x > t).count(), 2);
        assert_eq!(threshold(&d, 0.0), 200.0);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(fit(&[], 2).is_err());
        assert!(fit(&[vec![1.0, 2.0], vec![1.0]], 1).is_err());
        assert!(fit(&[vec![1.0, 2.0], vec![1.0, 2.0], vec![1.0, 2.0]], 1).is_err());
        assert!(
            fit(
                &[
                    vec![1.0, 2.0, 3.0],
                    vec![3.0, 2.0, 1.0],
                    vec![0.0, 1.0, 0.0]
                ],
                3
            )
            .is_err()
        );
    }
}
