//! ReLU (shaders/relu.wgsl; reference `cpu::relu`): vec4 quads when the length is a multiple
//! of 4 (every tensor of the network), single elements otherwise.

use crate::gpu::shaders::module_in;
use crate::gpu::{Binding, CompileError, Dispatch, Gpu, Kernel, ShaderInterface, Slice};
use crate::shapes::Precision;
use crate::struct_layout;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ReluParams {
    quads: u32,
    accumulate: u32,
}

const PARAMS: Binding = Binding::new(0, "r");
const X: Binding = Binding::new(1, "x");
const Y: Binding = Binding::new(5, "y");
const DY: Binding = Binding::new(6, "dy");
const DX: Binding = Binding::new(8, "dx");

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["relu_vec4", "relu_scalar"],
    bindings: &[PARAMS, X, Y, DY, DX],
    structs: &[struct_layout!(ReluParams { quads, accumulate })],
    constants: &[],
};

/// The kernel of `entry` for `len` elements, its params, and its grid.
fn kernel(
    gpu: &Gpu,
    precision: Precision,
    entry: &str,
    len: usize,
    accumulate: bool,
) -> Result<(Kernel, wgpu::Buffer, [u32; 3]), CompileError> {
    let (module, quad) = if len.is_multiple_of(4) { ("relu_vec4", 4) } else { ("relu_scalar", 1) };
    let quads = len / quad;
    let params = ReluParams { quads: quads as u32, accumulate: accumulate as u32 };
    Ok((
        Kernel::new(gpu, module_in(module, precision), entry, &[])?,
        gpu.uniform("relu params", &params),
        gpu.grid_1d(quads),
    ))
}

pub fn forward(
    gpu: &Gpu,
    precision: Precision,
    len: usize,
    x: Slice,
    y: Slice,
) -> Result<Dispatch, CompileError> {
    let (kernel, p, grid) = kernel(gpu, precision, "forward", len, false)?;
    Ok(kernel.dispatch(gpu, &[(PARAMS, (&p).into()), (X, x), (Y, y)], grid))
}

/// dx = (or += with `accumulate`) dy where the forward input `x` was positive.
pub fn backward(
    gpu: &Gpu,
    precision: Precision,
    len: usize,
    x: Slice,
    dy: Slice,
    dx: Slice,
    accumulate: bool,
) -> Result<Dispatch, CompileError> {
    let (kernel, p, grid) = kernel(gpu, precision, "backward", len, accumulate)?;
    Ok(kernel.dispatch(gpu, &[(PARAMS, (&p).into()), (X, x), (DY, dy), (DX, dx)], grid))
}
