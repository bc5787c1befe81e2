//! SGD update (shaders/sgd.wgsl; reference `cpu::sgd`).

use crate::gpu::{Dispatch, Gpu, Kernel, Slice, grid_1d};
use crate::shapes::SgdSettings;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SgdParams {
    len: u32,
    momentum: f32,
    weight_decay: f32,
    nesterov: u32,
}

/// Updates `len` weights in place; the learning rate is read from the StepUniform `step`.
pub fn step(
    gpu: &Gpu,
    s: &SgdSettings,
    len: usize,
    step: Slice,
    weights: Slice,
    grads: Slice,
    velocity: Slice,
) -> Dispatch {
    let p = gpu.uniform(
        "sgd params",
        &SgdParams {
            len: len as u32,
            momentum: s.momentum as f32,
            weight_decay: s.weight_decay as f32,
            nesterov: s.nesterov as u32,
        },
    );
    Kernel::new(gpu, "sgd", "main", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (1, step), (2, weights), (3, grads), (4, velocity)],
        grid_1d(len, 256),
    )
}
