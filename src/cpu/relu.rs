//! ReLU.

pub fn forward(x: &[f64]) -> Vec<f64> {
    x.iter().map(|v| v.max(0.0)).collect()
}

/// `x` is the forward input.
pub fn backward(x: &[f64], dy: &[f64]) -> Vec<f64> {
    x.iter().zip(dy).map(|(x, g)| if *x > 0.0 { *g } else { 0.0 }).collect()
}
