//! SGD (Nesterov momentum, weight decay) against `cpu::sgd`, two steps on a length off the
//! workgroup size (tolerance 1e-5 of the largest reference value); and the update bound in
//! ranges, as under a binding limit smaller than the parameters, equal bit for bit to the
//! update in one range (tolerance 0).

use super::{Checked, compare, upload, values};
use crate::cpu;
use crate::gpu::Gpu;
use crate::ops::{self, StepUniform};
use crate::shapes::SgdSettings;

const TOLERANCE: f64 = 1e-5;

pub fn two_steps(gpu: &Gpu) -> Checked {
    let len = 777;
    let settings = SgdSettings::PAPER;
    let (mut w, g, mut v) = (values(len, 71), values(len, 72), values(len, 73));
    let (wb, gb, vb) = (upload(gpu, &w), upload(gpu, &g), upload(gpu, &v));
    let lr = 0.2f32;
    let step = gpu.uniform("step", &StepUniform { step: 0, seed: 0, lr, _pad: 0 });
    let d = ops::sgd::step(gpu, &settings, len, (&step).into(), (&wb).into(), (&gb).into(), (&vb).into())?;
    gpu.run(&d.iter().chain(&d).collect::<Vec<_>>());
    for _ in 0..2 {
        cpu::sgd::step(&settings, lr as f64, &mut w, &g, &mut v);
    }
    let shape = len.to_string();
    Ok(vec![
        compare("sgd", "weights", "-", &shape, &gpu.read(&wb), &w, TOLERANCE),
        compare("sgd", "velocity", "-", &shape, &gpu.read(&vb), &v, TOLERANCE),
    ])
}

pub fn ranges_equal_one_range(gpu: &Gpu) -> Checked {
    let len = 1000;
    let align = crate::gpu::buffers::binding_alignment_floats(&gpu.limits);
    let settings = SgdSettings::PAPER;
    let (w, g, v) = (values(len, 81), values(len, 82), values(len, 83));
    let step = gpu.uniform("step", &StepUniform { step: 0, seed: 0, lr: 0.1, _pad: 0 });
    let run = |per_range: usize| {
        let (wb, gb, vb) = (upload(gpu, &w), upload(gpu, &g), upload(gpu, &v));
        let d = ops::sgd::step_in_ranges(
            gpu,
            &settings,
            len,
            per_range,
            (&step).into(),
            (&wb).into(),
            (&gb).into(),
            (&vb).into(),
        )?;
        assert_eq!(d.len(), len.div_ceil(per_range), "one dispatch a range");
        gpu.run(&d.iter().collect::<Vec<_>>());
        let (w, v): (Vec<f32>, Vec<f32>) = (gpu.read(&wb), gpu.read(&vb));
        Ok(w.into_iter().chain(v).map(f64::from).collect::<Vec<f64>>())
    };
    let whole = run(len.next_multiple_of(align))?;
    [align, 3 * align]
        .into_iter()
        .map(|per_range| {
            let split: Vec<f32> = run(per_range)?.iter().map(|x| *x as f32).collect();
            let shape = format!("{len} in ranges of {per_range}");
            Ok(compare("sgd", "ranges vs one range", "-", &shape, &split, &whole, 0.0))
        })
        .collect()
}
