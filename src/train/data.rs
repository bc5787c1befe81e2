//! CIFAR-10 data: reading and checking the official binary layout.

/// Per-channel mean and standard deviation on the 0-255 scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// The values the paper's code uses.
    pub const CIFAR10: Normalization = Normalization { mean: [125.3, 123.0, 113.9], std: [63.0, 62.1, 66.7] };

    pub fn mean64(&self) -> [f64; 3] {
        self.mean.map(|v| v as f64)
    }
    pub fn std64(&self) -> [f64; 3] {
        self.std.map(|v| v as f64)
    }
}
