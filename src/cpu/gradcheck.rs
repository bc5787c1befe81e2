//! Finite differences, to check each reference's backward, and comparison helpers shared by
//! the tests and the op benchmark.

/// Central differences of a scalar function at `x`.
pub fn numeric_gradient(f: impl Fn(&[f64]) -> f64, x: &[f64], eps: f64) -> Vec<f64> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            probe[i] = x[i] + eps;
            let up = f(&probe);
            probe[i] = x[i] - eps;
            let down = f(&probe);
            probe[i] = x[i];
            (up - down) / (2.0 * eps)
        })
        .collect()
}

/// sum(a * b): turns a vector output into a scalar whose gradient is `b`.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Largest |got - want| relative to max(1, largest |want|): one tolerance fits values of any scale.
pub fn max_relative_error(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    got.iter().zip(want).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max) / scale
}

/// Deterministic pseudo-random values in [-1, 1) for tests.
pub fn test_values(n: usize, salt: u32) -> Vec<f64> {
    (0..n).map(|i| crate::random::random_unit(salt, 0xC0FFEE, 7, i as u32) as f64 * 2.0 - 1.0).collect()
}
