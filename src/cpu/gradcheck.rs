//! Finite differences, to check each reference's backward, and the one error measure every
//! tolerance in the tests is stated in.

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

/// Largest |got - want| relative to the largest |want|, or to `floor` when that is larger
/// (so values near zero do not turn rounding into a large relative error). NaN if any value
/// is NaN where the other is not.
pub fn relative_error<G: Copy + Into<f64>>(got: &[G], want: &[f64], floor: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().fold(floor, |m, v| m.max(v.abs()));
    // f64::max would drop a NaN: a NaN anywhere makes the error NaN, which no tolerance passes.
    let diffs = got.iter().zip(want).map(|(g, w)| ((*g).into() - w).abs());
    diffs.fold(0.0, |worst: f64, d| if d.is_nan() || worst.is_nan() { f64::NAN } else { worst.max(d) })
        / scale
}

/// |got - want| over |want|, as vectors (Euclidean norms): how far a whole tensor is off,
/// where a few entries' rounding may be amplified (f16 gradients through batch norm). NaN
/// if any value is NaN; `floor` bounds |want| from below.
pub fn relative_l2_error<G: Copy + Into<f64>>(got: &[G], want: &[f64], floor: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let diff: f64 = got.iter().zip(want).map(|(g, w)| ((*g).into() - w).powi(2)).sum();
    let norm: f64 = want.iter().map(|w| w * w).sum();
    diff.sqrt() / norm.sqrt().max(floor)
}

/// Deterministic pseudo-random values in [-1, 1) for tests.
pub fn test_values(n: usize, salt: u32) -> Vec<f64> {
    (0..n).map(|i| crate::random::random_unit(salt, 0xC0FFEE, 7, i as u32) as f64 * 2.0 - 1.0).collect()
}

#[cfg(test)]
mod tests {
    use super::relative_error;

    #[test]
    fn a_nan_is_never_within_tolerance() {
        assert_eq!(relative_error(&[1.0f32, 2.0], &[1.0, 2.0], 1.0), 0.0);
        assert!(relative_error(&[f32::NAN, 2.0], &[1.0, 2.0], 1.0).is_nan());
        assert!(relative_error(&[1.0f32, f32::NAN], &[1.0, 2.0], 1.0).is_nan());
        assert!(relative_error(&[1.0f32], &[f64::NAN], 1.0).is_nan());
    }
}
