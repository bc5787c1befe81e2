//! Global average pooling against `cpu::pool`, over more planes than one workgroup has
//! invocations. Tolerance 1e-5 of the largest reference value; the input gradient, stored in
//! f16 with f16 activations, `F16_STORED` there (the pooled output stays f32).

use super::{Checked, compare, stored_tolerance, upload, upload_in, values, values_in};
use crate::cpu;
use crate::gpu::Gpu;
use crate::ops;
use crate::shapes::Precision;

const TOLERANCE: f64 = 1e-5;

pub fn forward_and_backward(gpu: &Gpu, precision: Precision) -> Checked {
    let (planes, plane) = (3 * 100, 64);
    let x = values_in(planes * plane, 41, precision);
    let dy = values(planes, 42);
    let (xb, dyb) = (upload_in(gpu, &x, precision), upload(gpu, &dy));
    let (y, dx) = (gpu.storage("y", planes), gpu.activations("dx", planes * plane, precision));
    gpu.run(&[
        &ops::pool::forward(gpu, precision, planes, plane, (&xb).into(), (&y).into())?,
        &ops::pool::backward(gpu, precision, planes, plane, (&dyb).into(), (&dx).into())?,
    ]);
    let shape = format!("{planes} planes of {plane}");
    let dx = gpu.read_activations(&dx, planes * plane, precision);
    Ok(vec![
        compare("pool", "forward", "-", &shape, &gpu.read(&y), &cpu::pool::forward(&x, plane), TOLERANCE),
        compare(
            "pool",
            "backward",
            "-",
            &shape,
            &dx,
            &cpu::pool::backward(&dy, plane),
            stored_tolerance(TOLERANCE, precision),
        ),
    ])
}
