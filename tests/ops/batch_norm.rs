//! Batch norm against `cpu::batch_norm`: training forward (with the running-statistics
//! update), evaluation forward, backward; with and without the fused ReLU; and statistics
//! over a full 128x32x32 batch with a large mean (a one-pass variance would lose it).
//! Planes of odd sizes run the scalar kernels, multiples of 4 the vec4 ones.
//! Tolerance 1e-4 of the largest reference value.

use crate::common::*;
use shakeshake::cpu::{self, gradcheck::test_values};
use shakeshake::ops::batch_norm::{BatchNorm, BnBuffers};
use shakeshake::shapes::BnShape;

const TOLERANCE: f64 = 1e-4;

struct Layer {
    gamma_beta: Vec<f64>,
    running: Vec<f64>,
}

fn layer(c: usize) -> Layer {
    let mut gamma_beta: Vec<f64> = rounded(&test_values(2 * c, 11));
    gamma_beta[..c].iter_mut().for_each(|g| *g += 1.5);
    let mut running = rounded(&test_values(2 * c, 12));
    running[c..].iter_mut().for_each(|v| *v = v.abs() + 0.5);
    Layer { gamma_beta, running }
}

fn check(s: BnShape, offset: f64) {
    let gpu = gpu();
    let c = s.channels;
    let x: Vec<f64> = rounded(&test_values(s.len(), 13).iter().map(|v| v * 3.0 + offset).collect::<Vec<_>>());
    let dy = rounded(&test_values(s.len(), 14));
    let l = layer(c);
    let (gamma, beta) = l.gamma_beta.split_at(c);
    let (rm, rv) = l.running.split_at(c);
    let (want_y, want_rm, want_rv) = cpu::batch_norm::forward_train(&s, &x, gamma, beta, rm, rv);
    let (want_dx, want_dgamma, want_dbeta) = cpu::batch_norm::backward(&s, &x, gamma, beta, &dy);

    let bn = BatchNorm::new(s);
    let (xb, dyb) = (upload(gpu, &x), upload(gpu, &dy));
    let saved = gpu.storage("saved", 2 * c);
    let running = upload(gpu, &l.running);
    let gamma_beta = upload(gpu, &l.gamma_beta);
    let buffers = BnBuffers { saved: (&saved).into(), gamma_beta: (&gamma_beta).into() };
    let (y, dx, grads) = (gpu.storage("y", s.len()), gpu.storage("dx", s.len()), gpu.storage("g", 2 * c));
    let mut dispatches = bn.forward_train(gpu, (&xb).into(), buffers, (&running).into(), (&y).into());
    dispatches.extend(bn.backward(gpu, (&xb).into(), buffers, (&dyb).into(), (&grads).into(), (&dx).into()));
    gpu.run(&dispatches.iter().collect::<Vec<_>>());
    let what = format!("{s:?} offset {offset}");
    assert_close(&download(gpu, &y), &want_y, TOLERANCE, &format!("forward {what}"));
    let want_running: Vec<f64> = want_rm.iter().chain(&want_rv).cloned().collect();
    assert_close(&download(gpu, &running), &want_running, TOLERANCE, &format!("running stats {what}"));
    assert_close(&download(gpu, &dx), &want_dx, TOLERANCE, &format!("dx {what}"));
    let want_grads: Vec<f64> = want_dgamma.iter().chain(&want_dbeta).cloned().collect();
    assert_close(&download(gpu, &grads), &want_grads, TOLERANCE, &format!("dgamma dbeta {what}"));

    // Evaluation uses the running statistics (as updated above).
    let eval = bn.forward_eval(gpu, (&xb).into(), buffers, (&running).into(), (&y).into());
    gpu.run(&eval.iter().collect::<Vec<_>>());
    let want_eval = cpu::batch_norm::normalize(&s, &x, &want_rm, &want_rv, gamma, beta);
    assert_close(&download(gpu, &y), &want_eval, TOLERANCE, &format!("eval {what}"));
}

#[test]
fn small_shapes_match_reference() {
    on_every_gpu(|| {
        for relu in [false, true] {
            check(BnShape::new(1, 3, 5 * 7, relu), 0.0);
            check(BnShape::new(3, 5, 9, relu), 0.5);
            check(BnShape::new(2, 4, 1, relu), -1.0);
            check(BnShape::new(3, 5, 8 * 8, relu), 0.25); // vec4 kernels
            check(BnShape::new(1, 2, 12, relu), 0.0);
        }
    });
}

#[test]
fn full_batch_statistics_stay_accurate() {
    on_every_gpu(|| {
        check(BnShape::new(128, 2, 32 * 32, true), 100.0);
    });
}
