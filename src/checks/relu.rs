//! ReLU against `cpu::relu`: forward, backward, and backward accumulating into dx, as vec4s
//! (a length that is a multiple of 4) and as single elements (one that is not).
//! Exact (tolerance 0): the kernel only compares and copies.

use super::{Checked, compare, upload, values};
use crate::cpu;
use crate::gpu::Gpu;
use crate::ops;

pub fn forward_and_backward(gpu: &Gpu) -> Checked {
    Ok([checks_of_length(gpu, 1000)?, checks_of_length(gpu, 1001)?].concat())
}

fn checks_of_length(gpu: &Gpu, len: usize) -> Checked {
    let x = values(len, 21);
    let dy = values(len, 22);
    let (xb, dyb) = (upload(gpu, &x), upload(gpu, &dy));
    let (y, dx) = (gpu.storage("y", len), gpu.storage("dx", len));
    gpu.run(&[
        &ops::relu::forward(gpu, len, (&xb).into(), (&y).into())?,
        &ops::relu::backward(gpu, len, (&xb).into(), (&dyb).into(), (&dx).into(), false)?,
    ]);
    let shape = len.to_string();
    let want_dx = cpu::relu::backward(&x, &dy);
    let mut checks = vec![
        compare("relu", "forward", "-", &shape, &gpu.read(&y), &cpu::relu::forward(&x), 0.0),
        compare("relu", "backward", "-", &shape, &gpu.read(&dx), &want_dx, 0.0),
    ];
    gpu.run(&[&ops::relu::backward(gpu, len, (&xb).into(), (&dyb).into(), (&dx).into(), true)?]);
    let doubled: Vec<f64> = want_dx.iter().map(|v| 2.0 * v).collect();
    checks.push(compare("relu", "backward +=", "-", &shape, &gpu.read(&dx), &doubled, 0.0));
    Ok(checks)
}
