//! The fully connected layer against `cpu::linear`, with an input count off the workgroup
//! size. Tolerance 1e-5 of the largest reference value.

use crate::common::*;
use shakeshake::cpu::{self, gradcheck::test_values};
use shakeshake::ops;
use shakeshake::shapes::LinearShape;

const TOLERANCE: f64 = 1e-5;

#[test]
fn linear_forward_and_backward() {
    on_every_gpu(|| {
        let gpu = gpu();
        let fc = LinearShape { batch: 3, inputs: 13, outputs: 10 };
        let x = rounded(&test_values(fc.batch * fc.inputs, 51));
        let wb = rounded(&test_values(fc.param_len(), 52));
        let dy = rounded(&test_values(fc.batch * fc.outputs, 53));
        let (w, b) = wb.split_at(fc.outputs * fc.inputs);
        let (xb, wbb, dyb) = (upload(gpu, &x), upload(gpu, &wb), upload(gpu, &dy));
        let (y, dx, g) = (
            gpu.storage("y", fc.batch * fc.outputs),
            gpu.storage("dx", x.len()),
            gpu.storage("g", fc.param_len()),
        );
        let mut d = vec![ops::linear::forward(gpu, &fc, (&xb).into(), (&wbb).into(), (&y).into())];
        d.extend(ops::linear::backward(
            gpu,
            &fc,
            (&xb).into(),
            (&wbb).into(),
            (&dyb).into(),
            (&dx).into(),
            (&g).into(),
        ));
        gpu.run(&d.iter().collect::<Vec<_>>());
        let want_y = cpu::linear::forward(&x, w, b, fc.batch, fc.inputs, fc.outputs);
        let (want_dx, want_dw, want_db) = cpu::linear::backward(&x, w, &dy, fc.batch, fc.inputs, fc.outputs);
        assert_close(&download(gpu, &y), &want_y, TOLERANCE, "linear forward");
        assert_close(&download(gpu, &dx), &want_dx, TOLERANCE, "linear dx");
        let want_g: Vec<f64> = want_dw.iter().chain(&want_db).cloned().collect();
        assert_close(&download(gpu, &g), &want_g, TOLERANCE, "linear dW db");
    });
}
