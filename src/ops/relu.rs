//! ReLU (shaders/relu.wgsl; reference `cpu::relu`).

use crate::gpu::{Binding, Dispatch, Gpu, Kernel, ShaderInterface, Slice};
use crate::struct_layout;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ReluParams {
    len: u32,
    accumulate: u32,
}

const PARAMS: Binding = Binding::new(0, "r");
const X: Binding = Binding::new(1, "x");
const Y: Binding = Binding::new(2, "y");
const DY: Binding = Binding::new(3, "dy");
const DX: Binding = Binding::new(4, "dx");

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["relu"],
    bindings: &[PARAMS, X, Y, DY, DX],
    structs: &[struct_layout!(ReluParams { len, accumulate })],
    constants: &[],
};

fn params(gpu: &Gpu, len: usize, accumulate: bool) -> wgpu::Buffer {
    gpu.uniform("relu params", &ReluParams { len: len as u32, accumulate: accumulate as u32 })
}

pub fn forward(gpu: &Gpu, len: usize, x: Slice, y: Slice) -> Dispatch {
    let p = params(gpu, len, false);
    Kernel::new(gpu, "relu", "forward", &[]).dispatch(
        gpu,
        &[(PARAMS, (&p).into()), (X, x), (Y, y)],
        gpu.grid_1d(len),
    )
}

/// dx = (or += with `accumulate`) dy where the forward input `x` was positive.
pub fn backward(gpu: &Gpu, len: usize, x: Slice, dy: Slice, dx: Slice, accumulate: bool) -> Dispatch {
    let p = params(gpu, len, accumulate);
    Kernel::new(gpu, "relu", "backward", &[]).dispatch(
        gpu,
        &[(PARAMS, (&p).into()), (X, x), (DY, dy), (DX, dx)],
        gpu.grid_1d(len),
    )
}
