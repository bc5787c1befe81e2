//! SGD update (shaders/sgd.wgsl; reference `cpu::sgd`).

use super::STEP_UNIFORM;
use crate::gpu::{Binding, CompileError, Dispatch, Gpu, Kernel, ShaderInterface, Slice};
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
const LOSS_SCALE: Binding = Binding::new(5, "loss_scale");

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["sgd"],
    bindings: &[PARAMS, STEP, WEIGHTS, GRADS, VELOCITY, LOSS_SCALE],
    structs: &[
        struct_layout!(SgdParams { len, momentum, weight_decay, nesterov }),
        STEP_UNIFORM,
        super::loss_scale::STATE_LAYOUT,
    ],
    constants: &[],
};

/// The flat buffers SGD updates, and the loss scale it divides the gradients by (a state
/// buffer of `ops::loss_scale`: 1 without f16 activations).
#[derive(Clone, Copy)]
pub struct SgdBuffers<'a> {
    pub weights: Slice<'a>,
    pub grads: Slice<'a>,
    pub velocity: Slice<'a>,
    pub loss_scale: Slice<'a>,
}

/// Updates `len` weights in place; the learning rate is read from the StepUniform `step`.
/// The flat buffers are bound in ranges no larger than the device's storage binding limit
/// (one range on most devices; 26 2x112d's 35 million parameters take two under WebGPU's
/// 128 MiB default). The update is elementwise, so the split changes no bit.
pub fn step(
    gpu: &Gpu,
    s: &SgdSettings,
    len: usize,
    step: Slice,
    buffers: SgdBuffers,
) -> Result<Vec<Dispatch>, CompileError> {
    step_in_ranges(gpu, s, len, super::floats_per_binding(gpu), step, buffers)
}

/// Where a range may start.
fn alignment_floats(gpu: &Gpu) -> usize {
    crate::gpu::buffers::binding_alignment_floats(&gpu.limits)
}

/// As `step`, in ranges of at most `per_range` floats (a multiple of `alignment_floats`).
pub fn step_in_ranges(
    gpu: &Gpu,
    s: &SgdSettings,
    len: usize,
    per_range: usize,
    step: Slice,
    b: SgdBuffers,
) -> Result<Vec<Dispatch>, CompileError> {
    assert!(
        per_range > 0 && per_range.is_multiple_of(alignment_floats(gpu)),
        "SGD ranges must start at aligned offsets"
    );
    let kernel = Kernel::new(gpu, "sgd", "main", &[])?;
    let (momentum, weight_decay, nesterov) = (s.momentum as f32, s.weight_decay as f32, s.nesterov as u32);
    let dispatches = super::ranges(len, per_range)
        .map(|(first, count)| {
            let p =
                gpu.uniform("sgd params", &SgdParams { len: count as u32, momentum, weight_decay, nesterov });
            let bindings = [
                (PARAMS, (&p).into()),
                (STEP, step),
                (WEIGHTS, b.weights.floats(first, count)),
                (GRADS, b.grads.floats(first, count)),
                (VELOCITY, b.velocity.floats(first, count)),
                (LOSS_SCALE, b.loss_scale),
            ];
            kernel.dispatch(gpu, &bindings, gpu.grid_1d(count as usize))
        })
        .collect();
    Ok(dispatches)
}
