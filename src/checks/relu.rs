//! ReLU against `cpu::relu`: forward, backward, and backward accumulating into dx, as vec4s
//! (a length that is a multiple of 4) and as single elements (one that is not).
//! Exact (tolerance 0) in either precision: the kernel only compares and copies, and the
//! accumulating backward doubles values of [-1, 1), which f16 holds exactly too.

use super::{Checked, compare, upload_in, values_in};
use crate::cpu;
use crate::gpu::Gpu;
use crate::ops;
use crate::shapes::Precision;

pub fn forward_and_backward(gpu: &Gpu, precision: Precision) -> Checked {
    Ok([checks_of_length(gpu, precision, 1000)?, checks_of_length(gpu, precision, 1001)?].concat())
}

fn checks_of_length(gpu: &Gpu, precision: Precision, len: usize) -> Checked {
    let x = values_in(len, 21, precision);
    let dy = values_in(len, 22, precision);
    let (xb, dyb) = (upload_in(gpu, &x, precision), upload_in(gpu, &dy, precision));
    let (y, dx) = (gpu.activations("y", len, precision), gpu.activations("dx", len, precision));
    gpu.run(&[
        &ops::relu::forward(gpu, precision, len, (&xb).into(), (&y).into())?,
        &ops::relu::backward(gpu, precision, len, (&xb).into(), (&dyb).into(), (&dx).into(), false)?,
    ]);
    let shape = len.to_string();
    let read = |b: &wgpu::Buffer| gpu.read_activations(b, len, precision);
    let want_dx = cpu::relu::backward(&x, &dy);
    let mut checks = vec![
        compare("relu", "forward", "-", &shape, &read(&y), &cpu::relu::forward(&x), 0.0),
        compare("relu", "backward", "-", &shape, &read(&dx), &want_dx, 0.0),
    ];
    gpu.run(&[&ops::relu::backward(gpu, precision, len, (&xb).into(), (&dyb).into(), (&dx).into(), true)?]);
    let doubled: Vec<f64> = want_dx.iter().map(|v| 2.0 * v).collect();
    checks.push(compare("relu", "backward +=", "-", &shape, &read(&dx), &doubled, 0.0));
    Ok(checks)
}
