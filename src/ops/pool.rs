//! Global average pooling (shaders/pool.wgsl; reference `cpu::pool`).

use crate::gpu::shaders::module_in;
use crate::gpu::{Binding, CompileError, Dispatch, Gpu, Kernel, ShaderInterface, Slice};
use crate::shapes::Precision;
use crate::struct_layout;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PoolParams {
    planes: u32,
    plane: u32,
}

const PARAMS: Binding = Binding::new(0, "pp");
const X: Binding = Binding::new(1, "x");
const Y: Binding = Binding::new(2, "y");
const DY: Binding = Binding::new(3, "dy");
const DX: Binding = Binding::new(4, "dx");

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["pool"],
    bindings: &[PARAMS, X, Y, DY, DX],
    structs: &[struct_layout!(PoolParams { planes, plane })],
    constants: &[],
};

fn params(gpu: &Gpu, planes: usize, plane: usize) -> wgpu::Buffer {
    gpu.uniform("pool params", &PoolParams { planes: planes as u32, plane: plane as u32 })
}

/// y[plane] = mean of x's plane; `planes` = N * C.
pub fn forward(
    gpu: &Gpu,
    precision: Precision,
    planes: usize,
    plane: usize,
    x: Slice,
    y: Slice,
) -> Result<Dispatch, CompileError> {
    let p = params(gpu, planes, plane);
    Ok(Kernel::new(gpu, module_in("pool", precision), "forward", &[])?.dispatch(
        gpu,
        &[(PARAMS, (&p).into()), (X, x), (Y, y)],
        gpu.grid_1d(planes),
    ))
}

pub fn backward(
    gpu: &Gpu,
    precision: Precision,
    planes: usize,
    plane: usize,
    dy: Slice,
    dx: Slice,
) -> Result<Dispatch, CompileError> {
    let p = params(gpu, planes, plane);
    Ok(Kernel::new(gpu, module_in("pool", precision), "backward", &[])?.dispatch(
        gpu,
        &[(PARAMS, (&p).into()), (DY, dy), (DX, dx)],
        gpu.grid_1d(planes * plane),
    ))
}
