//! Softmax cross-entropy against `cpu::cross_entropy`: the accumulated metrics and the
//! gradient, over more images than one workgroup. Tolerance 1e-5 of the largest reference value.

use crate::common::*;
use shakeshake::cpu::{self, gradcheck::test_values};
use shakeshake::ops;

const TOLERANCE: f64 = 1e-5;

#[test]
fn cross_entropy_loss_count_and_gradient() {
    on_every_gpu(|| {
        let gpu = gpu();
        let (batch, classes) = (300, 10); // more images than the workgroup's 256 invocations
        let logits: Vec<f64> =
            rounded(&test_values(batch * classes, 61).iter().map(|v| v * 4.0).collect::<Vec<_>>());
        let labels: Vec<u32> = (0..batch as u32).map(|i| (i * 7) % classes as u32).collect();
        let (lb, labb) = (upload(gpu, &logits), gpu.storage_from("labels", &labels));
        let metrics = gpu.storage("metrics", ops::cross_entropy::METRICS_LEN);
        let dl = gpu.storage("dlogits", logits.len());
        let forward =
            ops::cross_entropy::forward(gpu, batch, classes, (&lb).into(), (&labb).into(), (&metrics).into());
        let backward =
            ops::cross_entropy::backward(gpu, batch, classes, (&lb).into(), (&labb).into(), (&dl).into());
        // Twice: the totals accumulate, the last mean does not.
        gpu.run(&[&forward, &forward, &backward]);
        let (loss, correct) = cpu::cross_entropy::forward(&logits, &labels, classes);
        let n = batch as f64;
        let want = [2.0 * loss * n, 2.0 * correct as f64, 2.0 * n, loss];
        assert_close(&download(gpu, &metrics), &want, 1e-5, "loss metrics");
        assert!(correct > 0 && correct < batch, "the test data should have some right and some wrong");
        let want_dl = cpu::cross_entropy::backward(&logits, &labels, classes);
        assert_close(&download(gpu, &dl), &want_dl, TOLERANCE, "dlogits");
    });
}
