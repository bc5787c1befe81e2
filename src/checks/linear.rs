//! The fully connected layer against `cpu::linear`, with an input count off the workgroup
//! size and every pass over more invocations than one workgroup has. Tolerance 1e-5 of the
//! largest reference value.

use super::{Checked, compare, upload, values};
use crate::cpu;
use crate::gpu::Gpu;
use crate::ops;
use crate::shapes::{LinearShape, Precision};

const TOLERANCE: f64 = 1e-5;

pub fn forward_and_backward(gpu: &Gpu, _: Precision) -> Checked {
    let fc = LinearShape { batch: 29, inputs: 37, outputs: 10 };
    let x = values(fc.batch * fc.inputs, 51);
    let wb = values(fc.param_len(), 52);
    let dy = values(fc.batch * fc.outputs, 53);
    let (w, b) = wb.split_at(fc.outputs * fc.inputs);
    let (xb, wbb, dyb) = (upload(gpu, &x), upload(gpu, &wb), upload(gpu, &dy));
    let (y, dx, g) = (
        gpu.storage("y", fc.batch * fc.outputs),
        gpu.storage("dx", x.len()),
        gpu.storage("g", fc.param_len()),
    );
    let mut d = vec![ops::linear::forward(gpu, &fc, (&xb).into(), (&wbb).into(), (&y).into())?];
    d.extend(ops::linear::backward(
        gpu,
        &fc,
        (&xb).into(),
        (&wbb).into(),
        (&dyb).into(),
        (&dx).into(),
        (&g).into(),
    )?);
    gpu.run(&d.iter().collect::<Vec<_>>());
    let want_y = cpu::linear::forward(&x, w, b, fc.batch, fc.inputs, fc.outputs);
    let (want_dx, want_dw, want_db) = cpu::linear::backward(&x, w, &dy, fc.batch, fc.inputs, fc.outputs);
    let want_g: Vec<f64> = want_dw.iter().chain(&want_db).cloned().collect();
    let shape = format!("{}x{} -> {}", fc.batch, fc.inputs, fc.outputs);
    Ok(vec![
        compare("linear", "forward", "-", &shape, &gpu.read(&y), &want_y, TOLERANCE),
        compare("linear", "dx", "-", &shape, &gpu.read(&dx), &want_dx, TOLERANCE),
        compare("linear", "dW db", "-", &shape, &gpu.read(&g), &want_g, TOLERANCE),
    ])
}
