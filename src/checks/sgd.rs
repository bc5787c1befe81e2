//! SGD (Nesterov momentum, weight decay) against `cpu::sgd`, two steps on a length off the
//! workgroup size, from gradients scaled by a loss scale it divides out (tolerance 1e-5 of
//! the largest reference value); and the update bound in ranges, as under a binding limit
//! smaller than the parameters, equal bit for bit to the update in one range (tolerance 0).

use super::{Checked, compare, upload, values};
use crate::cpu;
use crate::gpu::Gpu;
use crate::ops::sgd::SgdBuffers;
use crate::ops::{self, StepUniform};
use crate::shapes::{LossScale, Precision, SgdSettings};

const TOLERANCE: f64 = 1e-5;

/// The buffers of an update, the gradients `scale` times too large.
fn sgd_buffers<'a>(b: &'a [wgpu::Buffer; 4]) -> SgdBuffers<'a> {
    SgdBuffers {
        weights: (&b[0]).into(),
        grads: (&b[1]).into(),
        velocity: (&b[2]).into(),
        loss_scale: (&b[3]).into(),
    }
}

pub fn two_steps(gpu: &Gpu, _: Precision) -> Checked {
    let len = 777;
    let settings = SgdSettings::PAPER;
    let (mut w, g, mut v) = (values(len, 71), values(len, 72), values(len, 73));
    // As f16 training leaves them: times the loss scale, which SGD divides out.
    let scale = 256.0;
    let scaled: Vec<f64> = g.iter().map(|x| x * scale as f64).collect();
    let state = ops::loss_scale::state_buffer(gpu, LossScale { scale, ..LossScale::NONE });
    let buffers = [upload(gpu, &w), upload(gpu, &scaled), upload(gpu, &v), state];
    let lr = 0.2f32;
    let step = gpu.uniform("step", &StepUniform { step: 0, seed: 0, lr, _pad: 0 });
    let d = ops::sgd::step(gpu, &settings, len, (&step).into(), sgd_buffers(&buffers))?;
    gpu.run(&d.iter().chain(&d).collect::<Vec<_>>());
    for _ in 0..2 {
        cpu::sgd::step(&settings, lr as f64, &mut w, &g, &mut v);
    }
    let shape = format!("{len}, loss scale {scale}");
    Ok(vec![
        compare("sgd", "weights", "-", &shape, &gpu.read(&buffers[0]), &w, TOLERANCE),
        compare("sgd", "velocity", "-", &shape, &gpu.read(&buffers[2]), &v, TOLERANCE),
    ])
}

pub fn ranges_equal_one_range(gpu: &Gpu, _: Precision) -> Checked {
    let len = 1000;
    let align = crate::gpu::buffers::binding_alignment_floats(&gpu.limits);
    let settings = SgdSettings::PAPER;
    let (w, g, v) = (values(len, 81), values(len, 82), values(len, 83));
    let step = gpu.uniform("step", &StepUniform { step: 0, seed: 0, lr: 0.1, _pad: 0 });
    let run = |per_range: usize| {
        let state = ops::loss_scale::state_buffer(gpu, LossScale::NONE);
        let buffers = [upload(gpu, &w), upload(gpu, &g), upload(gpu, &v), state];
        let d =
            ops::sgd::step_in_ranges(gpu, &settings, len, per_range, (&step).into(), sgd_buffers(&buffers))?;
        assert_eq!(d.len(), len.div_ceil(per_range), "one dispatch a range");
        gpu.run(&d.iter().collect::<Vec<_>>());
        let (w, v): (Vec<f32>, Vec<f32>) = (gpu.read(&buffers[0]), gpu.read(&buffers[2]));
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
