//! CIFAR bytes to a normalised batch (shaders/prepare_batch.wgsl; reference
//! `cpu::prepare_batch`).

use crate::cpu::prepare_batch::IMAGE_BYTES;
use crate::gpu::{Dispatch, Gpu, Kernel, Slice, grid_1d};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PrepareParams {
    batch: u32,
    augment: u32,
    _pad: [u32; 2],
    mean: [f32; 4],
    inv_std: [f32; 4],
}

/// `pixels` holds batch x 3072 bytes (as u32 words); `images` batch x 3 x 32 x 32 floats.
/// With `augment`, crops and flips are drawn from the StepUniform's seed and step.
pub fn prepare(
    gpu: &Gpu,
    batch: usize,
    mean: [f32; 3],
    std: [f32; 3],
    augment: bool,
    step: Slice,
    pixels: Slice,
    images: Slice,
) -> Dispatch {
    let p = gpu.uniform(
        "prepare params",
        &PrepareParams {
            batch: batch as u32,
            augment: augment as u32,
            _pad: [0; 2],
            mean: [mean[0], mean[1], mean[2], 0.0],
            inv_std: [1.0 / std[0], 1.0 / std[1], 1.0 / std[2], 0.0],
        },
    );
    Kernel::new(gpu, "prepare_batch", "main", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (1, step), (2, pixels), (3, images)],
        grid_1d(batch * IMAGE_BYTES, 256),
    )
}
