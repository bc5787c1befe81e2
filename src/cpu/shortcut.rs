//! The projection shortcut's pieces, spelled out as the authors' code does them: subsample,
//! shift one pixel right and down, and channel concatenation. The GPU folds subsample and
//! shift into the 1x1 convolution's addressing (`Conv2dShape::shifted_1x1`) and writes both
//! halves into one buffer; tests compare it with these.

/// Every `stride`-th row and column, starting at 0: NCHW to N C ceil(H/s) ceil(W/s).
pub fn subsample(x: &[f64], n: usize, c: usize, h: usize, w: usize, stride: usize) -> Vec<f64> {
    let (oh, ow) = (h.div_ceil(stride), w.div_ceil(stride));
    let mut y = Vec::with_capacity(n * c * oh * ow);
    for plane in 0..n * c {
        for i in 0..oh {
            for j in 0..ow {
                y.push(x[(plane * h + i * stride) * w + j * stride]);
            }
        }
    }
    y
}

/// y[i][j] = x[i-1][j-1], zero in the first row and column.
pub fn shift(x: &[f64], n: usize, c: usize, h: usize, w: usize) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for plane in 0..n * c {
        for i in 1..h {
            for j in 1..w {
                y[(plane * h + i) * w + j] = x[(plane * h + i - 1) * w + j - 1];
            }
        }
    }
    y
}

/// Concatenate along channels: a (N, ca, plane) then b (N, cb, plane).
pub fn concat(a: &[f64], ca: usize, b: &[f64], cb: usize, n: usize, plane: usize) -> Vec<f64> {
    let mut y = Vec::with_capacity(a.len() + b.len());
    for img in 0..n {
        y.extend_from_slice(&a[img * ca * plane..(img + 1) * ca * plane]);
        y.extend_from_slice(&b[img * cb * plane..(img + 1) * cb * plane]);
    }
    y
}
