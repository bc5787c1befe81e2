//! Fully connected layer (shaders/linear.wgsl; reference `cpu::linear`). Parameters are one
//! slice: W [out][in] followed by b [out].

use crate::gpu::{Binding, CompileError, Dispatch, Gpu, Kernel, ShaderInterface, Slice};
use crate::shapes::LinearShape;
use crate::struct_layout;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LinearParams {
    batch: u32,
    inputs: u32,
    outputs: u32,
    _pad: u32,
}

const PARAMS: Binding = Binding::new(0, "lp");
const X: Binding = Binding::new(1, "x");
const WEIGHT_BIAS: Binding = Binding::new(2, "weight_bias");
const Y: Binding = Binding::new(3, "y");
const DY: Binding = Binding::new(4, "dy");
const DX: Binding = Binding::new(5, "dx");
const GRAD_WEIGHT_BIAS: Binding = Binding::new(6, "grad_weight_bias");

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["linear"],
    bindings: &[PARAMS, X, WEIGHT_BIAS, Y, DY, DX, GRAD_WEIGHT_BIAS],
    structs: &[struct_layout!(LinearParams { batch, inputs, outputs })],
    constants: &[],
};

fn params(gpu: &Gpu, s: &LinearShape) -> wgpu::Buffer {
    let (batch, inputs, outputs) = (s.batch as u32, s.inputs as u32, s.outputs as u32);
    gpu.uniform("linear params", &LinearParams { batch, inputs, outputs, _pad: 0 })
}

pub fn forward(
    gpu: &Gpu,
    s: &LinearShape,
    x: Slice,
    weight_bias: Slice,
    y: Slice,
) -> Result<Dispatch, CompileError> {
    let p = params(gpu, s);
    Ok(Kernel::new(gpu, "linear", "forward", &[])?.dispatch(
        gpu,
        &[(PARAMS, (&p).into()), (X, x), (WEIGHT_BIAS, weight_bias), (Y, y)],
        gpu.grid_1d(s.batch * s.outputs),
    ))
}

/// dx, then the gradient of W and b (written to `grad_weight_bias`).
pub fn backward(
    gpu: &Gpu,
    s: &LinearShape,
    x: Slice,
    weight_bias: Slice,
    dy: Slice,
    dx: Slice,
    grad_weight_bias: Slice,
) -> Result<Vec<Dispatch>, CompileError> {
    let p = params(gpu, s);
    let grad_input = Kernel::new(gpu, "linear", "grad_input", &[])?.dispatch(
        gpu,
        &[(PARAMS, (&p).into()), (WEIGHT_BIAS, weight_bias), (DY, dy), (DX, dx)],
        gpu.grid_1d(s.batch * s.inputs),
    );
    let grad_weight = Kernel::new(gpu, "linear", "grad_weight", &[])?.dispatch(
        gpu,
        &[(PARAMS, (&p).into()), (X, x), (DY, dy), (GRAD_WEIGHT_BIAS, grad_weight_bias)],
        gpu.grid_1d(s.param_len()),
    );
    Ok(vec![grad_input, grad_weight])
}
