//! ReLU against `cpu::relu`: forward, backward, and backward accumulating into dx.
//! Exact (tolerance 0): the kernel only compares and copies.

use crate::common::*;
use shakeshake::cpu::{self, gradcheck::test_values};
use shakeshake::ops;

#[test]
fn relu_forward_and_backward() {
    on_every_gpu(|| {
        let gpu = gpu();
        let len = 1000;
        let x = rounded(&test_values(len, 21));
        let dy = rounded(&test_values(len, 22));
        let (xb, dyb) = (upload(gpu, &x), upload(gpu, &dy));
        let (y, dx) = (gpu.storage("y", len), gpu.storage("dx", len));
        gpu.run(&[
            &ops::relu::forward(gpu, len, (&xb).into(), (&y).into()),
            &ops::relu::backward(gpu, len, (&xb).into(), (&dyb).into(), (&dx).into(), false),
        ]);
        let want_dx = cpu::relu::backward(&x, &dy);
        assert_close(&download(gpu, &y), &cpu::relu::forward(&x), 0.0, "relu forward");
        assert_close(&download(gpu, &dx), &want_dx, 0.0, "relu backward");
        gpu.run(&[&ops::relu::backward(gpu, len, (&xb).into(), (&dyb).into(), (&dx).into(), true)]);
        let doubled: Vec<f64> = want_dx.iter().map(|v| 2.0 * v).collect();
        assert_close(&download(gpu, &dx), &doubled, 0.0, "relu backward, accumulated");
    });
}
