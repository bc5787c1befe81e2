//! Batch normalisation over NCHW, per channel, with an optional fused ReLU on the output.

use crate::shapes::BnShape;

/// Values each channel's statistics are taken over.
fn count(s: &BnShape) -> usize {
    s.batch * s.plane
}

/// Indices of channel `c`'s values, image by image.
fn indices(s: &BnShape, c: usize) -> impl Iterator<Item = usize> + '_ {
    (0..s.batch).flat_map(move |n| {
        let start = (n * s.channels + c) * s.plane;
        start..start + s.plane
    })
}

/// Per-channel mean and biased variance of a batch.
pub fn batch_statistics(s: &BnShape, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let m = count(s) as f64;
    (0..s.channels)
        .map(|c| {
            let mean = indices(s, c).map(|i| x[i]).sum::<f64>() / m;
            let var = indices(s, c).map(|i| (x[i] - mean).powi(2)).sum::<f64>() / m;
            (mean, var)
        })
        .unzip()
}

/// Normalise with the given statistics, scale, shift, optional ReLU.
pub fn normalize(s: &BnShape, x: &[f64], mean: &[f64], var: &[f64], gamma: &[f64], beta: &[f64]) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let c = (i / s.plane) % s.channels;
            let z = (x[i] - mean[c]) / (var[c] + s.eps).sqrt() * gamma[c] + beta[c];
            if s.relu { z.max(0.0) } else { z }
        })
        .collect()
}

/// Training forward: output, and the running statistics after the update. Each ghost batch
/// is a batch of its own, and updates the running statistics in turn.
pub fn forward_train(
    s: &BnShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    running_mean: &[f64],
    running_var: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut y, mut rm, mut rv) = (Vec::with_capacity(x.len()), running_mean.to_vec(), running_var.to_vec());
    for (ghost, range) in s.ghost_batches() {
        let (yg, m, v) = forward_train_one(&ghost, &x[range], gamma, beta, &rm, &rv);
        (rm, rv) = (m, v);
        y.extend(yg);
    }
    (y, rm, rv)
}

/// `forward_train` of one ghost batch.
fn forward_train_one(
    s: &BnShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    running_mean: &[f64],
    running_var: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mean, var) = batch_statistics(s, x);
    let m = count(s) as f64;
    let unbiased = |v: f64| v * m / (m - 1.0).max(1.0);
    let rm = running_mean.iter().zip(&mean).map(|(r, b)| (1.0 - s.momentum) * r + s.momentum * b).collect();
    let rv = running_var
        .iter()
        .zip(&var)
        .map(|(r, b)| (1.0 - s.momentum) * r + s.momentum * unbiased(*b))
        .collect();
    (normalize(s, x, &mean, &var, gamma, beta), rm, rv)
}

/// Training backward (batch statistics): dx, dgamma, dbeta; each ghost batch's dx through its
/// own statistics, dgamma and dbeta summed over them.
pub fn backward(
    s: &BnShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut dx, mut dgamma, mut dbeta) =
        (Vec::with_capacity(x.len()), vec![0.0; s.channels], vec![0.0; s.channels]);
    for (ghost, range) in s.ghost_batches() {
        let (dxg, dg, db) = backward_one(&ghost, &x[range.clone()], gamma, beta, &dy[range]);
        dx.extend(dxg);
        dgamma.iter_mut().zip(dg).for_each(|(sum, v)| *sum += v);
        dbeta.iter_mut().zip(db).for_each(|(sum, v)| *sum += v);
    }
    (dx, dgamma, dbeta)
}

/// `backward` of one ghost batch.
fn backward_one(
    s: &BnShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mean, var) = batch_statistics(s, x);
    let m = count(s) as f64;
    let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (v + s.eps).sqrt()).collect();
    let xhat = |i: usize, c: usize| (x[i] - mean[c]) * inv_std[c];
    // Through the fused ReLU first.
    let g = |i: usize, c: usize| {
        if s.relu && xhat(i, c) * gamma[c] + beta[c] <= 0.0 { 0.0 } else { dy[i] }
    };
    let mut dx = vec![0.0; x.len()];
    let mut dgamma = vec![0.0; s.channels];
    let mut dbeta = vec![0.0; s.channels];
    for c in 0..s.channels {
        dgamma[c] = indices(s, c).map(|i| g(i, c) * xhat(i, c)).sum();
        dbeta[c] = indices(s, c).map(|i| g(i, c)).sum();
        for i in indices(s, c) {
            dx[i] = gamma[c] * inv_std[c] * (g(i, c) - dbeta[c] / m - xhat(i, c) * dgamma[c] / m);
        }
    }
    (dx, dgamma, dbeta)
}
