//! Batch preparation against `cpu::prepare_batch`: normalisation, and the same crops and
//! flips drawn from the step. Tolerance 1e-5 of the largest reference value.

use crate::common::*;
use shakeshake::cpu;
use shakeshake::ops::{self, StepUniform};
use shakeshake::shapes::Normalization;

#[test]
fn prepare_batch_normalises_crops_and_flips_like_the_reference() {
    on_every_gpu(|| {
        let gpu = gpu();
        let batch = 5;
        let pixels: Vec<u8> =
            (0..batch * 3072).map(|i| (shakeshake::random::pcg_hash(i as u32) % 256) as u8).collect();
        let norm = Normalization::CIFAR10;
        let pb = gpu.storage_from("pixels", &pixels);
        let out = gpu.storage("images", pixels.len());
        let step = StepUniform { step: 9, seed: 1234, lr: 0.0, _pad: 0 };
        let sb = gpu.uniform("step", &step);
        for augment in [false, true] {
            let prep = ops::prepare_batch::Prepare { batch, norm, augment };
            let d = prep.dispatch(gpu, (&sb).into(), (&pb).into(), (&out).into());
            gpu.run(&[&d]);
            let draws = augment.then_some((step.seed, step.step));
            let want = cpu::prepare_batch::prepare(&pixels, norm.mean64(), norm.std64(), draws);
            assert_close(&download(gpu, &out), &want, 1e-5, &format!("prepare augment={augment}"));
        }
        // The draws vary across images: not every image gets the same crop and flip.
        let draws: std::collections::HashSet<_> =
            (0..batch).map(|i| cpu::prepare_batch::augmentation(step.seed, step.step, i)).collect();
        assert!(draws.len() > 1);
    });
}
