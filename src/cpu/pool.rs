//! Global average pooling over each plane.

pub fn forward(x: &[f64], plane: usize) -> Vec<f64> {
    x.chunks(plane).map(|p| p.iter().sum::<f64>() / plane as f64).collect()
}

pub fn backward(dy: &[f64], plane: usize) -> Vec<f64> {
    dy.iter().flat_map(|g| std::iter::repeat_n(g / plane as f64, plane)).collect()
}
