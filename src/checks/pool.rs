//! Global average pooling against `cpu::pool`, over more planes than one workgroup has
//! invocations. Tolerance 1e-5 of the largest reference value.

use super::{Checked, compare, upload, values};
use crate::cpu;
use crate::gpu::Gpu;
use crate::ops;

const TOLERANCE: f64 = 1e-5;

pub fn forward_and_backward(gpu: &Gpu) -> Checked {
    let (planes, plane) = (3 * 100, 64);
    let x = values(planes * plane, 41);
    let dy = values(planes, 42);
    let (xb, dyb) = (upload(gpu, &x), upload(gpu, &dy));
    let (y, dx) = (gpu.storage("y", planes), gpu.storage("dx", planes * plane));
    gpu.run(&[
        &ops::pool::forward(gpu, planes, plane, (&xb).into(), (&y).into())?,
        &ops::pool::backward(gpu, planes, plane, (&dyb).into(), (&dx).into())?,
    ]);
    let shape = format!("{planes} planes of {plane}");
    Ok(vec![
        compare("pool", "forward", "-", &shape, &gpu.read(&y), &cpu::pool::forward(&x, plane), TOLERANCE),
        compare("pool", "backward", "-", &shape, &gpu.read(&dx), &cpu::pool::backward(&dy, plane), TOLERANCE),
    ])
}
