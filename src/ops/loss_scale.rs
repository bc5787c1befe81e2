//! Dynamic loss scaling for f16 activations (shaders/loss_scale.wgsl; reference
//! `cpu::loss_scale`): the state buffer the loss, SGD and the scaler bind, the check of a
//! step's gradients for an overflow, and the scale's update at the step's end.

use crate::gpu::{Binding, CompileError, DeviceLost, Dispatch, Gpu, Kernel, ShaderInterface, Slice};
use crate::shapes::{LossScale, LossScaling};
use crate::struct_layout;

/// shaders/loss_scale_state.wgsl's LossScaleState.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LossScaleState {
    scale: f32,
    clean_steps: u32,
    skipped: u32,
    overflow: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ScaleParams {
    len: u32,
    growth_interval: u32,
}

const PARAMS: Binding = Binding::new(0, "sc");
const GRADS: Binding = Binding::new(1, "grads");
const STATE: Binding = Binding::new(2, "loss_scale");

pub const STATE_LAYOUT: crate::gpu::interface::StructLayout =
    struct_layout!(LossScaleState { scale, clean_steps, skipped, overflow });

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["loss_scale"],
    bindings: &[PARAMS, GRADS, STATE],
    structs: &[struct_layout!(ScaleParams { len, growth_interval }), STATE_LAYOUT],
    constants: &[],
};

/// A state buffer holding `state` (no overflow marked).
pub fn state_buffer(gpu: &Gpu, state: LossScale) -> wgpu::Buffer {
    gpu.storage_from("loss scale", &[to_gpu(state)])
}

/// Sets the state buffer to `state`.
pub fn write_state(gpu: &Gpu, buffer: &wgpu::Buffer, state: LossScale) {
    gpu.queue.write_buffer(buffer, 0, bytemuck::bytes_of(&to_gpu(state)));
}

/// The state a buffer holds (waits for the GPU).
pub fn read_state(gpu: &Gpu, buffer: &wgpu::Buffer) -> Result<LossScale, DeviceLost> {
    let s: LossScaleState = gpu.try_read(buffer)?[0];
    Ok(LossScale { scale: s.scale, clean_steps: s.clean_steps, skipped: s.skipped })
}

fn to_gpu(s: LossScale) -> LossScaleState {
    LossScaleState { scale: s.scale, clean_steps: s.clean_steps, skipped: s.skipped, overflow: 0 }
}

/// Marks the state if any of the `len` gradients overflowed, binding them in ranges the
/// device's binding limit allows (as SGD does).
pub fn find_overflow(
    gpu: &Gpu,
    len: usize,
    grads: Slice,
    state: Slice,
) -> Result<Vec<Dispatch>, CompileError> {
    let kernel = Kernel::new(gpu, "loss_scale", "find_overflow", &[])?;
    let dispatches = super::ranges(len, super::floats_per_binding(gpu))
        .map(|(first, count)| {
            let p = gpu.uniform("loss scale params", &ScaleParams { len: count as u32, growth_interval: 0 });
            let bindings = [(PARAMS, (&p).into()), (GRADS, grads.floats(first, count)), (STATE, state)];
            kernel.dispatch(gpu, &bindings, gpu.grid_1d(count as usize))
        })
        .collect();
    Ok(dispatches)
}

/// The step's end, after SGD: the scale after this step, and the overflow mark cleared.
pub fn update(gpu: &Gpu, scaling: &LossScaling, state: Slice) -> Result<Dispatch, CompileError> {
    let p =
        gpu.uniform("loss scale params", &ScaleParams { len: 0, growth_interval: scaling.growth_interval });
    Ok(Kernel::new(gpu, "loss_scale", "update", &[])?.dispatch(
        gpu,
        &[(PARAMS, (&p).into()), (STATE, state)],
        [1, 1, 1],
    ))
}
