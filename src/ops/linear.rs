//! Fully connected layer (shaders/linear.wgsl; reference `cpu::linear`). Parameters are one
//! slice: W [out][in] followed by b [out].

use crate::gpu::{Dispatch, Gpu, Kernel, Slice, grid_1d};
use crate::shapes::LinearShape;

fn params(gpu: &Gpu, s: &LinearShape) -> wgpu::Buffer {
    gpu.uniform("linear params", &[s.batch as u32, s.inputs as u32, s.outputs as u32, 0])
}

pub fn forward(gpu: &Gpu, s: &LinearShape, x: Slice, weight_bias: Slice, y: Slice) -> Dispatch {
    let p = params(gpu, s);
    Kernel::new(gpu, "linear", "forward", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (1, x), (2, weight_bias), (3, y)],
        grid_1d(s.batch * s.outputs, 64),
    )
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
) -> Vec<Dispatch> {
    let p = params(gpu, s);
    let grad_input = Kernel::new(gpu, "linear", "grad_input", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (2, weight_bias), (4, dy), (5, dx)],
        grid_1d(s.batch * s.inputs, 64),
    );
    let grad_weight = Kernel::new(gpu, "linear", "grad_weight", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (1, x), (4, dy), (6, grad_weight_bias)],
        grid_1d(s.param_len(), 64),
    );
    vec![grad_input, grad_weight]
}
