//! y = x W^T + b, W as [out][in].

pub fn forward(x: &[f64], w: &[f64], b: &[f64], batch: usize, inputs: usize, outputs: usize) -> Vec<f64> {
    let mut y = vec![0.0; batch * outputs];
    for n in 0..batch {
        for o in 0..outputs {
            y[n * outputs + o] =
                b[o] + (0..inputs).map(|i| x[n * inputs + i] * w[o * inputs + i]).sum::<f64>();
        }
    }
    y
}

/// (dx, dW, db).
pub fn backward(
    x: &[f64],
    w: &[f64],
    dy: &[f64],
    batch: usize,
    inputs: usize,
    outputs: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut dx = vec![0.0; batch * inputs];
    let mut dw = vec![0.0; outputs * inputs];
    let mut db = vec![0.0; outputs];
    for n in 0..batch {
        for o in 0..outputs {
            let g = dy[n * outputs + o];
            db[o] += g;
            for i in 0..inputs {
                dx[n * inputs + i] += g * w[o * inputs + i];
                dw[o * inputs + i] += g * x[n * inputs + i];
            }
        }
    }
    (dx, dw, db)
}
