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
        gpu.run(&d.iter().chain(&d).collect::<Vec<_>>());
        for _ in 0..2 {
            cpu::sgd::step(&settings, lr as f64, &mut w, &g, &mut v);
        }
        assert_close(&download(gpu, &wb), &w, TOLERANCE, "sgd weights");
        assert_close(&download(gpu, &vb), &v, TOLERANCE, "sgd velocity");
    });
}

/// Bound in ranges (as under a binding limit smaller than the parameters), the update is the
/// same, bit for bit, as in one range.
#[test]
fn sgd_split_into_ranges_equals_one_range() {
    on_every_gpu(|| {
        let gpu = gpu();
        let len = 1000;
        let align = (gpu.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
        let settings = SgdSettings::PAPER;
        let (w, g, v) =
            (rounded(&test_values(len, 81)), rounded(&test_values(len, 82)), rounded(&test_values(len, 83)));
        let step = gpu.uniform("step", &StepUniform { step: 0, seed: 0, lr: 0.1, _pad: 0 });
        let mut results = vec![];
        for per_range in [len.next_multiple_of(align), align, 3 * align] {
            let (wb, gb, vb) = (upload(gpu, &w), upload(gpu, &g), upload(gpu, &v));
            let bindings = [(&wb).into(), (&gb).into(), (&vb).into()];
            let d = ops::sgd::step_in_ranges(
                gpu,
                &settings,
                len,
                per_range,
                (&step).into(),
                bindings[0],
                bindings[1],
                bindings[2],
            );
            assert_eq!(d.len(), len.div_ceil(per_range));
            gpu.run(&d.iter().collect::<Vec<_>>());
            results.push((download(gpu, &wb), download(gpu, &vb)));
        }
        assert!(results.iter().all(|r| *r == results[0]), "split SGD differs from unsplit");
    });
}
