//! Batch norm against `cpu::batch_norm`: training forward (with the running-statistics
//! update), evaluation forward, backward; with and without the fused ReLU; and statistics
//! over a full 128x32x32 batch with a large mean (a one-pass variance would lose it).
//! Planes of odd sizes run the scalar kernels, multiples of 4 the vec4 ones; 300 channels
//! spread the evaluation statistics' grid. Each runs with one workgroup a channel and with
//! the reductions spread over groups of images (what GPUs get), two and as many as a ghost
//! batch has images; and over ghost batches (`--bn-group`), the last one shorter, down to
//! single images, at channels and planes whose pipelines the other shapes compile anyway.
//! Tolerance 1e-4 of the largest reference value; with f16 activations, `F16_STORED` for the
//! outputs stored in f16 (y, dx), 1e-4 still for the f32 statistics and dgamma, dbeta.

use super::{Checked, compare, stored_tolerance, upload, upload_in, values, values_in};
use crate::cpu;
use crate::gpu::Gpu;
use crate::ops::batch_norm::{BatchNorm, BnBuffers};
use crate::shapes::{BnShape, Precision};

const TOLERANCE: f64 = 1e-4;

pub fn small_shapes(gpu: &Gpu, precision: Precision) -> Checked {
    let mut checks = vec![];
    let check = |gpu, s: BnShape, offset| check(gpu, s.in_precision(precision), offset);
    for relu in [false, true] {
        checks.extend(check(gpu, BnShape::new(1, 3, 5 * 7, relu), 0.0)?);
        checks.extend(check(gpu, BnShape::new(3, 5, 9, relu), 0.5)?);
        checks.extend(check(gpu, BnShape::new(2, 4, 1, relu), -1.0)?);
        checks.extend(check(gpu, BnShape::new(3, 5, 8 * 8, relu), 0.25)?); // vec4 kernels
        checks.extend(check(gpu, BnShape::new(1, 2, 12, relu), 0.0)?);
        checks.extend(check(gpu, BnShape::new(1, 300, 4, relu), 0.0)?);
        // Ghost batches, at the channels and planes above: their pipelines are those shapes'.
        checks.extend(check(gpu, BnShape::new(5, 5, 9, relu).with_ghost_batches(2), 0.5)?);
        checks.extend(check(gpu, BnShape::new(4, 5, 8 * 8, relu).with_ghost_batches(3), 0.25)?);
        checks.extend(check(gpu, BnShape::new(3, 2, 12, relu).with_ghost_batches(1), 0.0)?);
    }
    Ok(checks)
}

pub fn full_batch(gpu: &Gpu, precision: Precision) -> Checked {
    check(gpu, BnShape::new(128, 2, 32 * 32, true).in_precision(precision), 100.0)
}

fn check(gpu: &Gpu, s: BnShape, offset: f64) -> Checked {
    // Workgroups a channel's ghost batch: one, two, and one an image.
    let mut groups = [1, 2, s.ghost].map(|g| g.min(s.ghost)).to_vec();
    groups.dedup();
    let checks: Result<Vec<_>, _> =
        groups.into_iter().map(|g| check_groups(gpu, BatchNorm::with_groups(s, g), offset)).collect();
    Ok(checks?.concat())
}

fn check_groups(gpu: &Gpu, bn: BatchNorm, offset: f64) -> Checked {
    let s = bn.shape;
    let c = s.channels;
    let p = s.precision;
    let x: Vec<f64> = values(s.len(), 13).iter().map(|v| p.round(v * 3.0 + offset)).collect();
    let dy = values_in(s.len(), 14, p);
    let mut gamma_beta = values(2 * c, 11);
    gamma_beta[..c].iter_mut().for_each(|g| *g += 1.5);
    let mut running = values(2 * c, 12);
    running[c..].iter_mut().for_each(|v| *v = v.abs() + 0.5);
    let (gamma, beta) = gamma_beta.split_at(c);
    let (rm, rv) = running.split_at(c);
    let (want_y, want_rm, want_rv) = cpu::batch_norm::forward_train(&s, &x, gamma, beta, rm, rv);
    let (want_dx, want_dgamma, want_dbeta) = cpu::batch_norm::backward(&s, &x, gamma, beta, &dy);

    let (xb, dyb) = (upload_in(gpu, &x, p), upload_in(gpu, &dy, p));
    let saved = gpu.storage("saved", BatchNorm::saved_floats(&s));
    let running_b = upload(gpu, &running);
    let gamma_beta_b = upload(gpu, &gamma_beta);
    let partials = gpu.storage("partials", bn.partials_floats());
    let buffers = BnBuffers {
        saved: (&saved).into(),
        gamma_beta: (&gamma_beta_b).into(),
        partials: (&partials).into(),
    };
    let (y, dx, grads) =
        (gpu.activations("y", s.len(), p), gpu.activations("dx", s.len(), p), gpu.storage("g", 2 * c));
    let mut dispatches = bn.forward_train(gpu, (&xb).into(), buffers, (&running_b).into(), (&y).into())?;
    dispatches.extend(bn.backward(
        gpu,
        (&xb).into(),
        buffers,
        (&dyb).into(),
        (&grads).into(),
        (&dx).into(),
    )?);
    gpu.run(&dispatches.iter().collect::<Vec<_>>());
    let variant = format!("{}groups {}", if s.relu { "relu, " } else { "" }, bn.groups);
    let shape = format!("{}x{}x{} mean {offset}{}", s.batch, s.channels, s.plane, s.ghost_label());
    let check = |pass: &str, got: &[f32], want: &[f64]| {
        compare("batch_norm", pass, &variant, &shape, got, want, TOLERANCE)
    };
    let check_stored = |pass: &str, got: &wgpu::Buffer, want: &[f64]| {
        let got = gpu.read_activations(got, s.len(), p);
        compare("batch_norm", pass, &variant, &shape, &got, want, stored_tolerance(TOLERANCE, p))
    };
    let want_running: Vec<f64> = want_rm.iter().chain(&want_rv).cloned().collect();
    let want_grads: Vec<f64> = want_dgamma.iter().chain(&want_dbeta).cloned().collect();
    let mut checks = vec![
        check_stored("forward", &y, &want_y),
        check("running stats", &gpu.read(&running_b), &want_running),
        check_stored("dx", &dx, &want_dx),
        check("dgamma dbeta", &gpu.read(&grads), &want_grads),
    ];

    // Evaluation uses the running statistics (as updated above).
    let eval = bn.forward_eval(gpu, (&xb).into(), buffers, (&running_b).into(), (&y).into())?;
    gpu.run(&eval.iter().collect::<Vec<_>>());
    let want_eval = cpu::batch_norm::normalize(&s, &x, &want_rm, &want_rv, gamma, beta);
    // (Evaluation has no ghost batches: the running statistics serve every image.)
    checks.push(check_stored("eval", &y, &want_eval));
    Ok(checks)
}
