//! ReLU (shaders/relu.wgsl; reference `cpu::relu`).

use crate::gpu::{Dispatch, Gpu, Kernel, Slice, grid_1d};

fn params(gpu: &Gpu, len: usize, accumulate: bool) -> wgpu::Buffer {
    gpu.uniform("relu params", &[len as u32, accumulate as u32, 0, 0])
}

pub fn forward(gpu: &Gpu, len: usize, x: Slice, y: Slice) -> Dispatch {
    let p = params(gpu, len, false);
    Kernel::new(gpu, "relu", "forward", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (1, x), (2, y)],
        grid_1d(len, 256),
    )
}

/// dx = (or += with `accumulate`) dy where the forward input `x` was positive.
pub fn backward(gpu: &Gpu, len: usize, x: Slice, dy: Slice, dx: Slice, accumulate: bool) -> Dispatch {
    let p = params(gpu, len, accumulate);
    Kernel::new(gpu, "relu", "backward", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (1, x), (3, dy), (4, dx)],
        grid_1d(len, 256),
    )
}
