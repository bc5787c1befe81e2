//! SGD (Nesterov momentum, weight decay) against `cpu::sgd`, two steps on a length off the
//! workgroup size. Tolerance 1e-5 of the largest reference value.

use crate::common::*;
use shakeshake::cpu::{self, gradcheck::test_values};
use shakeshake::ops::{self, StepUniform};
use shakeshake::shapes::SgdSettings;

const TOLERANCE: f64 = 1e-5;

#[test]
fn sgd_nesterov_with_weight_decay() {
    on_every_gpu(|| {
        let gpu = gpu();
        let len = 777;
        let settings = SgdSettings::PAPER;
        let mut w = rounded(&test_values(len, 71));
        let g = rounded(&test_values(len, 72));
        let mut v = rounded(&test_values(len, 73));
        let (wb, gb, vb) = (upload(gpu, &w), upload(gpu, &g), upload(gpu, &v));
        let lr = 0.2f32;
        let step = gpu.uniform("step", &StepUniform { step: 0, seed: 0, lr, _pad: 0 });
        let d = ops::sgd::step(gpu, &settings, len, (&step).into(), (&wb).into(), (&gb).into(), (&vb).into());
        gpu.run(&[&d, &d]);
        for _ in 0..2 {
            cpu::sgd::step(&settings, lr as f64, &mut w, &g, &mut v);
        }
        assert_close(&download(gpu, &wb), &w, TOLERANCE, "sgd weights");
        assert_close(&download(gpu, &vb), &v, TOLERANCE, "sgd velocity");
    });
}
