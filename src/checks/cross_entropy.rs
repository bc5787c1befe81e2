//! Softmax cross-entropy against `cpu::cross_entropy`: the accumulated metrics and the
//! gradient, over more images than one workgroup, unscaled and times a loss scale (f16
//! training's). Tolerance 1e-5 of the largest reference value.

use super::{Checked, compare, upload};
use crate::cpu::{self, gradcheck::test_values};
use crate::gpu::Gpu;
use crate::ops;
use crate::shapes::{BatchShare, LossScale, Precision};

const TOLERANCE: f64 = 1e-5;

pub fn metrics_and_gradient(gpu: &Gpu, _: Precision) -> Checked {
    let (batch, classes) = (300, 10); // more images than the workgroup's 256 invocations
    let logits: Vec<f64> = test_values(batch * classes, 61).iter().map(|v| (v * 4.0) as f32 as f64).collect();
    let labels: Vec<u32> = (0..batch as u32).map(|i| (i * 7) % classes as u32).collect();
    let (lb, labb) = (upload(gpu, &logits), gpu.storage_from("labels", &labels));
    let metrics = gpu.storage("metrics", ops::cross_entropy::METRICS_FLOATS);
    let (dl, dl_share) = (gpu.storage("dlogits", logits.len()), gpu.storage("dlogits", logits.len()));
    let forward =
        ops::cross_entropy::forward(gpu, batch, classes, (&lb).into(), (&labb).into(), (&metrics).into())?;
    // Unscaled; and as the f16 backward begins, times 2^10.
    let unscaled = ops::loss_scale::state_buffer(gpu, LossScale::NONE);
    let scale = 1024.0;
    let scaled = ops::loss_scale::state_buffer(gpu, LossScale { scale, ..LossScale::NONE });
    let backward = |share, dl: &wgpu::Buffer, state: &wgpu::Buffer| {
        let (logits, labels) = ((&lb).into(), (&labb).into());
        ops::cross_entropy::backward(gpu, batch, share, classes, logits, labels, dl.into(), state.into())
    };
    // These images as a share, from image 100, of a step's 512 (one of several devices).
    let share = BatchShare { first_image: 100, whole_batch: 512 };
    let (whole_backward, share_backward) =
        (backward(BatchShare::whole(batch), &dl, &unscaled)?, backward(share, &dl_share, &scaled)?);
    let count = ops::cross_entropy::count_step(gpu, (&metrics).into())?;
    // Twice: the totals accumulate, the last mean does not; so do the steps counted.
    gpu.run(&[&forward, &count, &forward, &whole_backward, &share_backward, &count]);
    let (loss, correct) = cpu::cross_entropy::forward(&logits, &labels, classes);
    assert!(correct > 0 && correct < batch, "the case's data should have some right and some wrong");
    let n = batch as f64;
    let want = [2.0 * loss * n, 2.0 * correct as f64, 2.0 * n, loss, 2.0];
    let want_dl = cpu::cross_entropy::backward(&logits, &labels, classes, batch);
    let want_dl_share: Vec<f64> = cpu::cross_entropy::backward(&logits, &labels, classes, share.whole_batch)
        .iter()
        .map(|g| g * scale as f64)
        .collect();
    let shape = format!("{batch}x{classes}");
    Ok(vec![
        compare(
            "cross_entropy",
            "metrics, steps counted",
            "-",
            &shape,
            &gpu.read(&metrics),
            &want,
            TOLERANCE,
        ),
        compare("cross_entropy", "dlogits", "-", &shape, &gpu.read(&dl), &want_dl, TOLERANCE),
        compare(
            "cross_entropy",
            "dlogits",
            "a share of 512, scale 1024",
            &shape,
            &gpu.read(&dl_share),
            &want_dl_share,
            TOLERANCE,
        ),
    ])
}
