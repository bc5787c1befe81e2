//! Batch preparation against `cpu::prepare_batch`: normalisation, and the same crops and
//! flips drawn from the step. Tolerance 1e-5 of the largest reference value; images stored in
//! f16, `F16_STORED`.

use super::{Checked, compare, stored_tolerance};
use crate::cpu;
use crate::gpu::Gpu;
use crate::ops::{self, StepUniform};
use crate::shapes::{Normalization, Precision};

pub fn normalise_crop_flip(gpu: &Gpu, precision: Precision) -> Checked {
    let batch = 5;
    let pixels: Vec<u8> =
        (0..batch * 3072).map(|i| (crate::random::pcg_hash(i as u32) % 256) as u8).collect();
    let norm = Normalization::CIFAR10;
    let pb = gpu.storage_from("pixels", &pixels);
    let out = gpu.activations("images", pixels.len(), precision);
    let step = StepUniform { step: 9, seed: 1234, lr: 0.0, _pad: 0 };
    let sb = gpu.uniform("step", &step);
    // The draws vary across images: not every image gets the same crop and flip.
    let draws: std::collections::HashSet<_> =
        (0..batch).map(|i| cpu::prepare_batch::augmentation(step.seed, step.step, i)).collect();
    assert!(draws.len() > 1, "the case's images should be augmented differently");
    // Plain, augmented, and augmented as a share from image 7 of a step's batch (one of
    // several devices): its draws are those of images 7 onward.
    [(false, 0), (true, 0), (true, 7)]
        .into_iter()
        .map(|(augment, first_image)| {
            let prep = ops::prepare_batch::Prepare { batch, norm, augment, first_image, precision };
            gpu.run(&[&prep.dispatch(gpu, (&sb).into(), (&pb).into(), (&out).into())?]);
            let draws = augment.then_some(cpu::prepare_batch::Draws {
                seed: step.seed,
                step: step.step,
                first_image,
            });
            let want = cpu::prepare_batch::prepare(&pixels, norm.mean64(), norm.std64(), draws);
            let variant = match (augment, first_image) {
                (false, _) => "plain".to_string(),
                (true, 0) => "augmented".to_string(),
                (true, first) => format!("augmented, from image {first}"),
            };
            Ok(compare(
                "prepare_batch",
                "images",
                &variant,
                &format!("{batch} images"),
                &gpu.read_activations(&out, pixels.len(), precision),
                &want,
                stored_tolerance(1e-5, precision),
            ))
        })
        .collect()
}
