//! SGD update (shaders/sgd.wgsl; reference `cpu::sgd`).

use super::STEP_UNIFORM;
use crate::gpu::{Binding, Dispatch, Gpu, Kernel, ShaderInterface, Slice, grid_1d};
use crate::shapes::SgdSettings;
use crate::struct_layout;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SgdParams {
    len: u32,
    momentum: f32,
    weight_decay: f32,
    nesterov: u32,
}

const PARAMS: Binding = Binding::new(0, "sp");
const STEP: Binding = Binding::new(1, "st");
const WEIGHTS: Binding = Binding::new(2, "weights");
const GRADS: Binding = Binding::new(3, "grads");
const VELOCITY: Binding = Binding::new(4, "velocity");

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["sgd"],
    bindings: &[PARAMS, STEP, WEIGHTS, GRADS, VELOCITY],
    structs: &[struct_layout!(SgdParams { len, momentum, weight_decay, nesterov }), STEP_UNIFORM],
    constants: &[],
};

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
        &[(PARAMS, (&p).into()), (STEP, step), (WEIGHTS, weights), (GRADS, grads), (VELOCITY, velocity)],
        grid_1d(len, 256),
    )
}
