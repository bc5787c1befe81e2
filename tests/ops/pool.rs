//! Global average pooling against `cpu::pool`. Tolerance 1e-5 of the largest reference value.

use crate::common::*;
use shakeshake::cpu::{self, gradcheck::test_values};
use shakeshake::ops;

const TOLERANCE: f64 = 1e-5;

#[test]
fn avg_pool_forward_and_backward() {
    on_every_gpu(|| {
        let gpu = gpu();
        let (planes, plane) = (2 * 7, 64);
        let x = rounded(&test_values(planes * plane, 41));
        let dy = rounded(&test_values(planes, 42));
        let (xb, dyb) = (upload(gpu, &x), upload(gpu, &dy));
        let (y, dx) = (gpu.storage("y", planes), gpu.storage("dx", planes * plane));
        gpu.run(&[
            &ops::pool::forward(gpu, planes, plane, (&xb).into(), (&y).into()),
            &ops::pool::backward(gpu, planes, plane, (&dyb).into(), (&dx).into()),
        ]);
        assert_close(&download(gpu, &y), &cpu::pool::forward(&x, plane), TOLERANCE, "pool forward");
        assert_close(&download(gpu, &dx), &cpu::pool::backward(&dy, plane), TOLERANCE, "pool backward");
    });
}
