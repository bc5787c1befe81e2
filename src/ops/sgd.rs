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

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["sgd"],
    bindings: &[PARAMS, STEP, WEIGHTS, GRADS, VELOCITY],
    structs: &[struct_layout!(SgdParams { len, momentum, weight_decay, nesterov }), STEP_UNIFORM],
    constants: &[],
};

/// Updates `len` weights in place; the learning rate is read from the StepUniform `step`.
/// The flat buffers are bound in ranges no larger than the device's storage binding limit
/// (one range on most devices; 26 2x112d's 35 million parameters take two under WebGPU's
/// 128 MiB default). The update is elementwise, so the split changes no bit.
pub fn step(
    gpu: &Gpu,
    s: &SgdSettings,
    len: usize,
    step: Slice,
    weights: Slice,
    grads: Slice,
    velocity: Slice,
) -> Result<Vec<Dispatch>, CompileError> {
    let align = alignment_floats(gpu);
    let per_binding = (gpu.limits.max_storage_buffer_binding_size as usize / 4) / align * align;
    step_in_ranges(gpu, s, len, per_binding, step, weights, grads, velocity)
}

/// Where a range may start.
fn alignment_floats(gpu: &Gpu) -> usize {
    crate::gpu::buffers::binding_alignment_floats(&gpu.limits)
}

/// As `step`, in ranges of at most `per_range` floats (a multiple of `alignment_floats`).
#[allow(clippy::too_many_arguments)]
pub fn step_in_ranges(
    gpu: &Gpu,
    s: &SgdSettings,
    len: usize,
    per_range: usize,
    step: Slice,
    weights: Slice,
    grads: Slice,
    velocity: Slice,
) -> Result<Vec<Dispatch>, CompileError> {
    assert!(
        per_range > 0 && per_range.is_multiple_of(alignment_floats(gpu)),
        "SGD ranges must start at aligned offsets"
    );
    let kernel = Kernel::new(gpu, "sgd", "main", &[])?;
    let (momentum, weight_decay, nesterov) = (s.momentum as f32, s.weight_decay as f32, s.nesterov as u32);
    let dispatches = (0..len)
        .step_by(per_range)
        .map(|first| {
            let n = per_range.min(len - first);
            let p = gpu.uniform("sgd params", &SgdParams { len: n as u32, momentum, weight_decay, nesterov });
            let (first, count) = (first as u64, n as u64);
            let bindings = [
                (PARAMS, (&p).into()),
                (STEP, step),
                (WEIGHTS, weights.floats(first, count)),
                (GRADS, grads.floats(first, count)),
                (VELOCITY, velocity.floats(first, count)),
            ];
            kernel.dispatch(gpu, &bindings, gpu.grid_1d(n))
        })
        .collect();
    Ok(dispatches)
}
