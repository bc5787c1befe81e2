//! CIFAR bytes to a normalised NCHW batch, with the GPU's random crop and flip.

use crate::random::{STREAM_CROP_COL, STREAM_CROP_ROW, STREAM_FLIP, random_u32, random_unit};
use crate::shapes::{IMAGE_BYTES, SIDE};

const PAD: usize = 4;

/// The crop offsets (0..=8, in the image padded by 4) and flip of image `img` at `step`.
pub fn augmentation(seed: u32, step: u32, img: usize) -> (usize, usize, bool) {
    let img = img as u32;
    let row = (random_u32(seed, step, STREAM_CROP_ROW, img) % 9) as usize;
    let col = (random_u32(seed, step, STREAM_CROP_COL, img) % 9) as usize;
    (row, col, random_unit(seed, step, STREAM_FLIP, img) < 0.5)
}

/// What a training batch's crops and flips are drawn from: the seed, the step, and where the
/// batch starts in the step's whole batch (its images are counted from there).
#[derive(Clone, Copy, Debug)]
pub struct Draws {
    pub seed: u32,
    pub step: u32,
    pub first_image: usize,
}

/// `pixels`: batch x 3072 bytes (planes R, G, B). Mean and std on the 0-255 scale.
pub fn prepare(pixels: &[u8], mean: [f64; 3], std: [f64; 3], augment: Option<Draws>) -> Vec<f64> {
    let batch = pixels.len() / IMAGE_BYTES;
    let mut out = vec![0.0; pixels.len()];
    for img in 0..batch {
        let (dr, dc, flip) = match augment {
            Some(d) => augmentation(d.seed, d.step, d.first_image + img),
            None => (PAD, PAD, false),
        };
        for c in 0..3 {
            for r in 0..SIDE {
                for col in 0..SIDE {
                    let col_flipped = if flip { SIDE - 1 - col } else { col };
                    // Position in the padded image, then in the original.
                    let (pr, pc) = (r + dr, col_flipped + dc);
                    let inside = (PAD..SIDE + PAD).contains(&pr) && (PAD..SIDE + PAD).contains(&pc);
                    let o = img * IMAGE_BYTES + c * SIDE * SIDE + r * SIDE + col;
                    out[o] = if inside {
                        let v =
                            pixels[img * IMAGE_BYTES + c * SIDE * SIDE + (pr - PAD) * SIDE + pc - PAD] as f64;
                        (v - mean[c]) / std[c]
                    } else {
                        0.0
                    };
                }
            }
        }
    }
    out
}
