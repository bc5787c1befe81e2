//! The counter-based generator of `shaders/random.wgsl`, bit for bit, so the CPU reference
//! can draw the same shake coefficients and crops as the GPU.

/// Streams of the shake coefficients: block `b` draws alpha from `2b`, beta from `2b + 1`.
pub const STREAM_ALPHA: u32 = 0;
pub const STREAM_BETA: u32 = 1;
/// Streams of the data augmentation (see shaders/prepare_batch.wgsl).
pub const STREAM_CROP_ROW: u32 = 0x8000_0000;
pub const STREAM_CROP_COL: u32 = 0x8000_0001;
pub const STREAM_FLIP: u32 = 0x8000_0002;

pub fn pcg_hash(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

pub fn random_u32(seed: u32, step: u32, stream: u32, index: u32) -> u32 {
    pcg_hash(seed ^ pcg_hash(step ^ pcg_hash(stream ^ pcg_hash(index))))
}

/// Uniform in [0, 1) with 24 bits, exactly as the shader computes it.
pub fn random_unit(seed: u32, step: u32, stream: u32, index: u32) -> f32 {
    (random_u32(seed, step, stream, index) >> 8) as f32 * (1.0 / 16777216.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_values_are_spread_over_zero_to_one() {
        let n = 20000;
        let values: Vec<f32> = (0..n).map(|i| random_unit(7, 3, STREAM_ALPHA, i)).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let mean = values.iter().sum::<f32>() / n as f32;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        let below_tenth = values.iter().filter(|v| **v < 0.1).count() as f32 / n as f32;
        assert!((below_tenth - 0.1).abs() < 0.01, "share below 0.1: {below_tenth}");
    }

    #[test]
    fn every_key_changes_the_value() {
        let base = random_u32(1, 2, 3, 4);
        assert_ne!(base, random_u32(0, 2, 3, 4));
        assert_ne!(base, random_u32(1, 0, 3, 4));
        assert_ne!(base, random_u32(1, 2, 0, 4));
        assert_ne!(base, random_u32(1, 2, 3, 0));
    }
}
