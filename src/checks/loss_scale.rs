//! Dynamic loss scaling against `cpu::loss_scale` and `cpu::sgd`: five steps as f16
//! training runs them (find_overflow, SGD, update), whose gradients hold an infinity, are
//! finite twice (the scale then doubles, at a growth interval of 2), then hold a NaN, then
//! an infinity again at a scale of 1 (which stays 1: the floor). A step
//! that overflowed must leave the weights and momentum exactly as they were (tolerance 0)
//! and halve the scale; the state must match the reference exactly; the weights and
//! momentum after each step, 1e-5 of the largest reference value.

use super::{Checked, compare, upload, values};
use crate::cpu;
use crate::gpu::Gpu;
use crate::ops::sgd::SgdBuffers;
use crate::ops::{self, StepUniform};
use crate::shapes::{LossScale, LossScaling, Precision, SgdSettings};

const TOLERANCE: f64 = 1e-5;

pub fn overflow_skips_and_clean_steps_grow(gpu: &Gpu, _: Precision) -> Checked {
    let len = 1000;
    let (settings, lr) = (SgdSettings::PAPER, 0.1f32);
    let scaling = LossScaling { initial: 1024.0, growth_interval: 2 };
    let mut state = LossScale { scale: scaling.initial, clean_steps: 1, skipped: 3 };
    let (mut w, g, mut v) = (values(len, 91), values(len, 92), values(len, 93));
    let (wb, vb, gb) = (upload(gpu, &w), upload(gpu, &v), gpu.storage("grads", len));
    let state_b = ops::loss_scale::state_buffer(gpu, state);
    let step = gpu.uniform("step", &StepUniform { step: 0, seed: 0, lr, _pad: 0 });
    let b = SgdBuffers {
        weights: (&wb).into(),
        grads: (&gb).into(),
        velocity: (&vb).into(),
        loss_scale: (&state_b).into(),
    };
    let mut dispatches = ops::loss_scale::find_overflow(gpu, len, b.grads, b.loss_scale)?;
    dispatches.extend(ops::sgd::step(gpu, &settings, len, (&step).into(), b)?);
    dispatches.push(ops::loss_scale::update(gpu, &scaling, b.loss_scale)?);

    let mut checks = vec![];
    let read = |b: &wgpu::Buffer| gpu.read::<f32>(b).into_iter().map(f64::from).collect::<Vec<f64>>();
    let mut before = (read(&wb), read(&vb));
    let steps = [
        (Some(f64::INFINITY), None),
        (None, None),
        (None, None),
        (Some(f64::NAN), None),
        (Some(f64::INFINITY), Some(1.0)),
    ];
    for (i, (bad, scale_before)) in steps.into_iter().enumerate() {
        if let Some(scale) = scale_before {
            state = LossScale { scale, ..state };
            ops::loss_scale::write_state(gpu, &state_b, state);
        }
        let mut grads = g.clone();
        if let Some(bad) = bad {
            grads[777] = bad;
        }
        let scaled: Vec<f32> = grads.iter().map(|x| (x * state.scale as f64) as f32).collect();
        gpu.queue.write_buffer(&gb, 0, bytemuck::cast_slice(&scaled));
        gpu.run(&dispatches.iter().collect::<Vec<_>>());
        let overflow = cpu::loss_scale::overflows(&grads);
        if !overflow {
            cpu::sgd::step(&settings, lr as f64, &mut w, &g, &mut v);
        }
        state = cpu::loss_scale::next(state, overflow, &scaling);
        let shape = format!("{len}, step {i}{}", if overflow { ", overflowed" } else { "" });
        let got = ops::loss_scale::read_state(gpu, &state_b).expect("device lost");
        let as_floats = |s: LossScale| [s.scale as f64, s.clean_steps as f64, s.skipped as f64];
        let got_state: Vec<f32> = as_floats(got).map(|x| x as f32).to_vec();
        checks.push(compare(
            "loss_scale",
            "scale, clean steps, skipped",
            "-",
            &shape,
            &got_state,
            &as_floats(state),
            0.0,
        ));
        let (got_w, got_v): (Vec<f32>, Vec<f32>) = (gpu.read(&wb), gpu.read(&vb));
        checks.push(compare("loss_scale", "weights", "-", &shape, &got_w, &w, TOLERANCE));
        checks.push(compare("loss_scale", "momentum", "-", &shape, &got_v, &v, TOLERANCE));
        if overflow {
            // A skipped step changes nothing, exactly.
            checks.push(compare("loss_scale", "weights unchanged", "-", &shape, &got_w, &before.0, 0.0));
            checks.push(compare("loss_scale", "momentum unchanged", "-", &shape, &got_v, &before.1, 0.0));
        }
        before = (read(&wb), read(&vb));
    }
    assert_eq!(state, LossScale { scale: 1.0, clean_steps: 0, skipped: 6 }, "the case runs every branch");
    Ok(checks)
}
