//! The shake-shake mix against `cpu::shake`: every forward mode, backward mode and level.
//! Tolerance 1e-5 of the largest reference value.

use crate::common::*;
use shakeshake::cpu::{self, gradcheck::test_values, shake::ShakeKey};
use shakeshake::ops::{self, StepUniform};
use shakeshake::shapes::{BackwardMode, ForwardMode, Level};

const TOLERANCE: f64 = 1e-5;

#[test]
fn shake_every_variant_matches_reference() {
    on_every_gpu(|| {
        let gpu = gpu();
        let (batch, image_len) = (5, 3 * 7);
        let len = batch * image_len;
        let (a, b, s, dy) = (
            rounded(&test_values(len, 31)),
            rounded(&test_values(len, 32)),
            rounded(&test_values(len, 33)),
            rounded(&test_values(len, 34)),
        );
        let bufs: Vec<wgpu::Buffer> = [&a, &b, &s, &dy].iter().map(|v| upload(gpu, v)).collect();
        let step = StepUniform { step: 17, seed: 42, lr: 0.0, _pad: 0 };
        let step_buffer = gpu.uniform("step", &step);
        for forward in [ForwardMode::Shake, ForwardMode::Even] {
            for backward in [BackwardMode::Shake, BackwardMode::Even, BackwardMode::Keep] {
                for level in [Level::Batch, Level::Image] {
                    let op = ops::shake::Shake { batch, image_len, block: 3, forward, backward, level };
                    let key =
                        ShakeKey { forward, backward, level, seed: step.seed, step: step.step, block: 3 };
                    let (y, da, db) = (gpu.storage("y", len), gpu.storage("da", len), gpu.storage("db", len));
                    let ds = gpu.storage("ds", len);
                    gpu.run(&[
                        &op.forward(
                            gpu,
                            (&step_buffer).into(),
                            (&bufs[0]).into(),
                            (&bufs[1]).into(),
                            (&bufs[2]).into(),
                            (&y).into(),
                        ),
                        &op.backward(
                            gpu,
                            (&step_buffer).into(),
                            (&bufs[3]).into(),
                            (&da).into(),
                            (&db).into(),
                            (&ds).into(),
                        ),
                    ]);
                    let what = format!("{forward:?} {backward:?} {level:?}");
                    let want_y = cpu::shake::forward(&key, image_len, &a, &b, &s);
                    let (want_da, want_db) = cpu::shake::backward(&key, image_len, &dy);
                    assert_close(&download(gpu, &y), &want_y, TOLERANCE, &format!("shake forward {what}"));
                    assert_close(&download(gpu, &da), &want_da, TOLERANCE, &format!("shake da {what}"));
                    assert_close(&download(gpu, &db), &want_db, TOLERANCE, &format!("shake db {what}"));
                    assert_close(&download(gpu, &ds), &dy, 0.0, &format!("shake dshortcut {what}"));
                }
            }
        }
    });
}

#[test]
fn shake_coefficients_differ_per_image_and_per_step() {
    let key = |step, level| ShakeKey {
        forward: ForwardMode::Shake,
        backward: BackwardMode::Shake,
        level,
        seed: 1,
        step,
        block: 0,
    };
    assert_ne!(key(0, Level::Image).alpha(0), key(0, Level::Image).alpha(1));
    assert_eq!(key(0, Level::Batch).alpha(0), key(0, Level::Batch).alpha(1));
    assert_ne!(key(0, Level::Batch).alpha(0), key(1, Level::Batch).alpha(0));
    assert_ne!(key(0, Level::Image).alpha(2), key(0, Level::Image).beta(2));
}
