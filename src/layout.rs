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

/// A 2-D convolution without bias. Output size is explicit: the projection shortcut's
/// shifted path pads only before the first row and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dShape {
    pub batch: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub ksize: usize,
    pub stride: usize,
    pub pad: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl Conv2dShape {
    /// A convolution padded by `pad` on every side.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        cin: usize,
        h: usize,
        w: usize,
        cout: usize,
        ksize: usize,
        stride: usize,
        pad: usize,
    ) -> Self {
        let out = |n: usize| (n + 2 * pad - ksize) / stride + 1;
        Conv2dShape { batch, cin, h, w, cout, ksize, stride, pad, out_h: out(h), out_w: out(w) }
    }

    /// The shortcut's second path: shift the input one pixel right and down (reading
    /// x[i-1][j-1], zero in the first row and column), subsample by `stride`, then 1x1.
    /// That is a 1x1 convolution padded by one before the image only.
    pub fn shifted_1x1(batch: usize, cin: usize, h: usize, w: usize, cout: usize, stride: usize) -> Self {
        Conv2dShape {
            batch,
            cin,
            h,
            w,
            cout,
            ksize: 1,
            stride,
            pad: 1,
            out_h: h.div_ceil(stride),
            out_w: w.div_ceil(stride),
        }
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.cin * self.h * self.w
    }
    pub fn output_len(&self) -> usize {
        self.batch * self.cout * self.out_h * self.out_w
    }
    pub fn weight_len(&self) -> usize {
        self.cout * self.cin * self.ksize * self.ksize
    }
    /// Multiply-adds of one pass, times two.
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.out_h * self.out_w) as f64
            * (self.cout * self.cin * self.ksize * self.ksize) as f64
    }
}

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

    #[test]
    fn shifted_path_keeps_the_subsampled_size() {
        let s = Conv2dShape::shifted_1x1(2, 16, 32, 32, 8, 2);
        assert_eq!((s.out_h, s.out_w), (16, 16));
        let p1 = Conv2dShape::new(2, 16, 32, 32, 8, 1, 2, 0);
        assert_eq!((p1.out_h, p1.out_w), (16, 16));
        let odd = Conv2dShape::shifted_1x1(1, 3, 7, 5, 4, 2);
        assert_eq!((odd.out_h, odd.out_w), (4, 3));
    }
}
