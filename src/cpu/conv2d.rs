//! Convolution (NCHW, weights [cout][cin][kh][kw]) and its two gradients.

use crate::shapes::Conv2dShape;

/// The input coordinate that tap `k` of output coordinate `o` reads, if inside the input.
fn source(s: &Conv2dShape, o: usize, k: usize, size: usize) -> Option<usize> {
    let i = (o * s.stride + k) as isize - s.pad as isize;
    (0..size as isize).contains(&i).then_some(i as usize)
}

/// Calls `f(x_index, w_index, y_index)` for every multiply-add of the convolution.
fn for_each_tap(s: &Conv2dShape, mut f: impl FnMut(usize, usize, usize)) {
    let k = s.ksize;
    for n in 0..s.batch {
        for co in 0..s.cout {
            for oh in 0..s.out_h {
                for ow in 0..s.out_w {
                    let yi = ((n * s.cout + co) * s.out_h + oh) * s.out_w + ow;
                    for ci in 0..s.cin {
                        for kh in 0..k {
                            let Some(ih) = source(s, oh, kh, s.h) else {
                                continue;
                            };
                            for kw in 0..k {
                                let Some(iw) = source(s, ow, kw, s.w) else {
                                    continue;
                                };
                                let xi = ((n * s.cin + ci) * s.h + ih) * s.w + iw;
                                let wi = ((co * s.cin + ci) * k + kh) * k + kw;
                                f(xi, wi, yi);
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn forward(s: &Conv2dShape, x: &[f64], w: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; s.output_len()];
    for_each_tap(s, |xi, wi, yi| y[yi] += x[xi] * w[wi]);
    y
}

pub fn grad_input(s: &Conv2dShape, dy: &[f64], w: &[f64]) -> Vec<f64> {
    let mut dx = vec![0.0; s.input_len()];
    for_each_tap(s, |xi, wi, yi| dx[xi] += dy[yi] * w[wi]);
    dx
}

pub fn grad_weight(s: &Conv2dShape, x: &[f64], dy: &[f64]) -> Vec<f64> {
    let mut dw = vec![0.0; s.weight_len()];
    for_each_tap(s, |xi, wi, yi| dw[wi] += dy[yi] * x[xi]);
    dw
}
