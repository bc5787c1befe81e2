//! The shake-shake mix against `cpu::shake`: every forward mode, backward mode and level, on
//! images of 21 elements (single elements) and of 20 (vec4 quads).
//! Tolerance 1e-5 of the largest reference value (the shortcut's gradient is a copy: 0).

use super::{Check, compare, upload, values};
use crate::cpu::{self, shake::ShakeKey};
use crate::gpu::Gpu;
use crate::ops::{self, StepUniform};
use crate::shapes::{BackwardMode, ForwardMode, Level};

const TOLERANCE: f64 = 1e-5;

pub fn every_mode(gpu: &Gpu) -> Vec<Check> {
    [(5, 3 * 7), (3, 4 * 5)]
        .into_iter()
        .flat_map(|(batch, image_len)| every_mode_of(gpu, batch, image_len))
        .collect()
}

fn every_mode_of(gpu: &Gpu, batch: usize, image_len: usize) -> Vec<Check> {
    let len = batch * image_len;
    let (a, b, s, dy) = (values(len, 31), values(len, 32), values(len, 33), values(len, 34));
    let bufs: Vec<wgpu::Buffer> = [&a, &b, &s, &dy].iter().map(|v| upload(gpu, v)).collect();
    let step = StepUniform { step: 17, seed: 42, lr: 0.0, _pad: 0 };
    let step_buffer = gpu.uniform("step", &step);
    let shape = format!("{batch}x{image_len}");
    let mut checks = vec![];
    for forward in [ForwardMode::Shake, ForwardMode::Even] {
        for backward in [BackwardMode::Shake, BackwardMode::Even, BackwardMode::Keep] {
            for level in [Level::Batch, Level::Image] {
                let op = ops::shake::Shake { batch, image_len, block: 3, forward, backward, level };
                let key = ShakeKey { forward, backward, level, seed: step.seed, step: step.step, block: 3 };
                let (y, da, db) = (gpu.storage("y", len), gpu.storage("da", len), gpu.storage("db", len));
                let ds = gpu.storage("ds", len);
                let st = (&step_buffer).into();
                gpu.run(&[
                    &op.forward(
                        gpu,
                        st,
                        (&bufs[0]).into(),
                        (&bufs[1]).into(),
                        (&bufs[2]).into(),
                        (&y).into(),
                    ),
                    &op.backward(gpu, st, (&bufs[3]).into(), (&da).into(), (&db).into(), (&ds).into()),
                ]);
                let variant = format!("{forward:?} {backward:?} {level:?}");
                let want_y = cpu::shake::forward(&key, image_len, &a, &b, &s);
                let (want_da, want_db) = cpu::shake::backward(&key, image_len, &dy);
                let check = |pass: &str, got: &wgpu::Buffer, want: &[f64], tolerance: f64| {
                    compare("shake", pass, &variant, &shape, &gpu.read(got), want, tolerance)
                };
                checks.extend([
                    check("forward", &y, &want_y, TOLERANCE),
                    check("da", &da, &want_da, TOLERANCE),
                    check("db", &db, &want_db, TOLERANCE),
                    check("dshortcut", &ds, &dy, 0.0),
                ]);
            }
        }
    }
    checks
}
