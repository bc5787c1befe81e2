//! The shake-shake mix with the block's shortcut, and its coefficients.

use crate::random::{STREAM_ALPHA, STREAM_BETA, random_unit};
use crate::shapes::{BackwardMode, ForwardMode, Level};

/// Which coefficients a block draws, keyed like the shader (seed, step, block, image; the
/// image counted from `first_image`, the batch's place in the step's whole batch).
#[derive(Clone, Copy, Debug)]
pub struct ShakeKey {
    pub forward: ForwardMode,
    pub backward: BackwardMode,
    pub level: Level,
    pub seed: u32,
    pub step: u32,
    pub block: u32,
    pub first_image: usize,
}

impl ShakeKey {
    fn draw(&self, kind: u32, img: usize) -> f64 {
        let index = if self.level == Level::Image { (self.first_image + img) as u32 } else { 0 };
        random_unit(self.seed, self.step, self.block * 2 + kind, index) as f64
    }

    pub fn alpha(&self, img: usize) -> f64 {
        match self.forward {
            ForwardMode::Shake => self.draw(STREAM_ALPHA, img),
            ForwardMode::Even => 0.5,
        }
    }

    pub fn beta(&self, img: usize) -> f64 {
        match self.backward {
            BackwardMode::Shake => self.draw(STREAM_BETA, img),
            BackwardMode::Even => 0.5,
            BackwardMode::Keep => self.alpha(img),
        }
    }
}

/// y = shortcut + alpha a + (1 - alpha) b, alpha per image (or per batch).
pub fn forward(key: &ShakeKey, image_len: usize, a: &[f64], b: &[f64], shortcut: &[f64]) -> Vec<f64> {
    (0..a.len())
        .map(|i| {
            let k = key.alpha(i / image_len);
            shortcut[i] + k * a[i] + (1.0 - k) * b[i]
        })
        .collect()
}

/// (da, db) = (beta dy, (1 - beta) dy); the shortcut's gradient is dy.
pub fn backward(key: &ShakeKey, image_len: usize, dy: &[f64]) -> (Vec<f64>, Vec<f64>) {
    (0..dy.len())
        .map(|i| {
            let k = key.beta(i / image_len);
            (k * dy[i], (1.0 - k) * dy[i])
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::ShakeKey;
    use crate::shapes::{BackwardMode, ForwardMode, Level};

    #[test]
    fn coefficients_differ_per_image_and_per_step() {
        let key = |step, level| ShakeKey {
            forward: ForwardMode::Shake,
            backward: BackwardMode::Shake,
            level,
            seed: 1,
            step,
            block: 0,
            first_image: 0,
        };
        assert_ne!(key(0, Level::Image).alpha(0), key(0, Level::Image).alpha(1));
        // A share starting at image 2 draws image 2's coefficients for its image 0.
        let share = ShakeKey { first_image: 2, ..key(0, Level::Image) };
        assert_eq!(share.alpha(0), key(0, Level::Image).alpha(2));
        assert_eq!(share.beta(1), key(0, Level::Image).beta(3));
        assert_eq!(key(0, Level::Batch).alpha(0), key(0, Level::Batch).alpha(1));
        assert_ne!(key(0, Level::Batch).alpha(0), key(1, Level::Batch).alpha(0));
        assert_ne!(key(0, Level::Image).alpha(2), key(0, Level::Image).beta(2));
    }
}
