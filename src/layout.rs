//! How tensors live in GPU memory, decided here once.
//!
//! Activations are NCHW: CIFAR records are planar (a red plane, then green, then blue), the
//! checkpoint format is PyTorch's, and each channel's plane is contiguous, so the
//! convolution kernels read neighbouring pixels of a row from consecutive addresses and
//! batch norm reduces over contiguous planes.
//!
//! Convolution weights are [cin][kh][kw][cout] on the GPU ("tap-major"): a tap's output
//! channels are contiguous, so the forward kernel loads four output channels as one vec4,
//! and the weight gradient is written in the same order it is used. Checkpoints store
//! PyTorch's [cout][cin][kh][kw]; `conv_weight_to_gpu` / `conv_weight_from_gpu` convert.
//! Linear weights are PyTorch's [out][in] on both sides.

/// PyTorch [cout][cin][kh][kw] to the GPU's [cin][kh][kw][cout].
pub fn conv_weight_to_gpu<T: Copy>(oihw: &[T], cout: usize, cin: usize, ksize: usize) -> Vec<T> {
    let taps = cin * ksize * ksize;
    assert_eq!(oihw.len(), cout * taps);
    (0..taps * cout).map(|i| oihw[(i % cout) * taps + i / cout]).collect()
}

/// The GPU's [cin][kh][kw][cout] to PyTorch [cout][cin][kh][kw].
pub fn conv_weight_from_gpu<T: Copy>(gpu: &[T], cout: usize, cin: usize, ksize: usize) -> Vec<T> {
    let taps = cin * ksize * ksize;
    assert_eq!(gpu.len(), cout * taps);
    (0..taps * cout).map(|i| gpu[(i % taps) * cout + i / taps]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_layout_round_trips() {
        let w: Vec<u32> = (0..5 * 3 * 9).collect();
        let g = conv_weight_to_gpu(&w, 5, 3, 3);
        // tap (ci=1, kh=2, kw=0) of output channel 4
        assert_eq!(g[(9 + 6) * 5 + 4], w[4 * 27 + 9 + 6]);
        assert_eq!(conv_weight_from_gpu(&g, 5, 3, 3), w);
    }
}
