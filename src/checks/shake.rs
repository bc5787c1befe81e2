//! The shake-shake mix against `cpu::shake` of the branches as `cpu::batch_norm` normalises
//! them (the GPU mix applies the branches' norms as it reads): every forward mode, backward
//! mode and level, on planes of 7 elements (single elements) and of 4 (vec4 quads), the
//! norms over the whole batch or over ghost batches (the last one shorter).
//! Tolerance 1e-5 of the largest reference value (the shortcut's gradient is a copy: 0), and
//! with f16 activations `F16_STORED` (every output is stored in f16; the copy is still exact).

use super::{Checked, compare, rounded, stored_tolerance, upload, upload_in, values, values_in};
use crate::cpu::{self, shake::ShakeKey};
use crate::gpu::Gpu;
use crate::ops::{self, StepUniform};
use crate::shapes::{BackwardMode, BnShape, ForwardMode, Level, Precision};

const TOLERANCE: f64 = 1e-5;

pub fn every_mode(gpu: &Gpu, precision: Precision) -> Checked {
    let checks: Result<Vec<_>, _> = [(5, 3, 7, 5), (3, 5, 4, 3), (5, 3, 7, 2), (4, 5, 4, 3)]
        .into_iter()
        .map(|(batch, channels, plane, ghost)| {
            let s = BnShape::new(batch, channels, plane, false).with_ghost_batches(ghost);
            every_mode_of(gpu, s.in_precision(precision))
        })
        .collect();
    Ok(checks?.concat())
}

/// A branch's norm: (x, saved = mean and inv_std as the GPU has them, gamma and beta) and
/// the normalised branch the mix must see.
struct BranchNorm {
    x: Vec<f64>,
    saved: Vec<f64>,
    gamma_beta: Vec<f64>,
    normalized: Vec<f64>,
}

/// Statistics of each ghost batch of `s`, each normalising its own images.
fn branch_norm(s: &BnShape, salt: u32) -> BranchNorm {
    let c = s.channels;
    let x = values_in(s.len(), salt, s.precision);
    let gamma_beta = values(2 * c, salt + 3);
    let (gamma, beta) = gamma_beta.split_at(c);
    let (mut saved, mut normalized) = (vec![], vec![]);
    for (g, (ghost, range)) in s.ghost_batches().enumerate() {
        let salt = salt + 10 * g as u32;
        let mean = values(c, salt + 1);
        let var: Vec<f64> = values(c, salt + 2).iter().map(|v| v.abs() + 0.5).collect();
        let inv_std = rounded(&var.iter().map(|v| 1.0 / (v + s.eps).sqrt()).collect::<Vec<f64>>());
        // The variance the rounded inv_std stands for, so the reference normalises as the GPU does.
        let var_seen: Vec<f64> = inv_std.iter().map(|i| 1.0 / (i * i) - s.eps).collect();
        normalized.extend(cpu::batch_norm::normalize(&ghost, &x[range], &mean, &var_seen, gamma, beta));
        saved.extend(mean.into_iter().chain(inv_std));
    }
    BranchNorm { x, saved, gamma_beta, normalized }
}

fn branch(b: &[wgpu::Buffer; 3]) -> ops::shake::Branch<'_> {
    ops::shake::Branch { x: (&b[0]).into(), saved: (&b[1]).into(), gamma_beta: (&b[2]).into() }
}

fn every_mode_of(gpu: &Gpu, s: BnShape) -> Checked {
    let (batch, len) = (s.batch, s.len());
    let image_len = len / batch;
    let norms = [branch_norm(&s, 31), branch_norm(&s, 41)];
    let p = s.precision;
    let (shortcut, dy) = (values_in(len, 33, p), values_in(len, 34, p));
    let uploaded =
        |n: &BranchNorm| [upload_in(gpu, &n.x, p), upload(gpu, &n.saved), upload(gpu, &n.gamma_beta)];
    let [a_bufs, b_bufs] = [uploaded(&norms[0]), uploaded(&norms[1])];
    let (shortcut_b, dy_b) = (upload_in(gpu, &shortcut, p), upload_in(gpu, &dy, p));
    let step = StepUniform { step: 17, seed: 42, lr: 0.0, _pad: 0 };
    let step_buffer = gpu.uniform("step", &step);
    let shape = format!("{batch}x{}x{}{}", s.channels, s.plane, s.ghost_label());
    let mut checks = vec![];
    for forward in [ForwardMode::Shake, ForwardMode::Even] {
        for backward in [BackwardMode::Shake, BackwardMode::Even, BackwardMode::Keep] {
            for level in [Level::Batch, Level::Image] {
                let (channels, plane) = (s.channels, s.plane);
                let ghost = s.ghost;
                // Per-image draws as a share from image 5 of a step's batch (one of several
                // devices); the network step's check has shares from image 0.
                let first_image = if level == Level::Image { 5 } else { 0 };
                let op = ops::shake::Shake {
                    batch,
                    channels,
                    plane,
                    block: 3,
                    forward,
                    backward,
                    level,
                    ghost,
                    first_image,
                    precision: p,
                };
                let (seed, step_number) = (step.seed, step.step);
                let key =
                    ShakeKey { forward, backward, level, seed, step: step_number, block: 3, first_image };
                let [y, da, db, ds] = ["y", "da", "db", "ds"].map(|name| gpu.activations(name, len, p));
                let st = (&step_buffer).into();
                gpu.run(&[
                    &op.forward(
                        gpu,
                        st,
                        branch(&a_bufs),
                        branch(&b_bufs),
                        (&shortcut_b).into(),
                        (&y).into(),
                    )?,
                    &op.backward(gpu, st, (&dy_b).into(), (&da).into(), (&db).into(), (&ds).into())?,
                ]);
                let variant = format!("{forward:?} {backward:?} {level:?}");
                let (a, b) = (&norms[0].normalized, &norms[1].normalized);
                let want_y = cpu::shake::forward(&key, image_len, a, b, &shortcut);
                let (want_da, want_db) = cpu::shake::backward(&key, image_len, &dy);
                let check = |pass: &str, got: &wgpu::Buffer, want: &[f64], tolerance: f64| {
                    let got = gpu.read_activations(got, len, p);
                    compare("shake", pass, &variant, &shape, &got, want, tolerance)
                };
                checks.extend([
                    check("forward", &y, &want_y, stored_tolerance(TOLERANCE, p)),
                    check("da", &da, &want_da, stored_tolerance(TOLERANCE, p)),
                    check("db", &db, &want_db, stored_tolerance(TOLERANCE, p)),
                    check("dshortcut", &ds, &dy, 0.0),
                ]);
            }
        }
    }
    Ok(checks)
}
