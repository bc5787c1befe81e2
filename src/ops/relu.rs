//! ReLU (shaders/relu.wgsl; reference `cpu::relu`).

use crate::gpu::{Dispatch, Gpu, Kernel, Slice, grid_1d};

fn params(gpu: &Gpu, len: usize) -> wgpu::Buffer {
    gpu.uniform("relu params", &[len as u32, 0, 0, 0])
}

pub fn forward(gpu: &Gpu, len: usize, x: Slice, y: Slice) -> Dispatch {
    let p = params(gpu, len);
    Kernel::new(gpu, "relu", "forward", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (1, x), (2, y)],
        grid_1d(len, 256),
    )
}

/// `x` is the forward input.
pub fn backward(gpu: &Gpu, len: usize, x: Slice, dy: Slice, dx: Slice) -> Dispatch {
    let p = params(gpu, len);
    Kernel::new(gpu, "relu", "backward", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (1, x), (3, dy), (4, dx)],
        grid_1d(len, 256),
    )
}
