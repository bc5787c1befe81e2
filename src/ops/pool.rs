//! Global average pooling (shaders/pool.wgsl; reference `cpu::pool`).

use crate::gpu::{Dispatch, Gpu, Kernel, Slice, grid_1d};

fn params(gpu: &Gpu, planes: usize, plane: usize) -> wgpu::Buffer {
    gpu.uniform("pool params", &[planes as u32, plane as u32])
}

/// y[plane] = mean of x's plane; `planes` = N * C.
pub fn forward(gpu: &Gpu, planes: usize, plane: usize, x: Slice, y: Slice) -> Dispatch {
    let p = params(gpu, planes, plane);
    Kernel::new(gpu, "pool", "forward", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (1, x), (2, y)],
        grid_1d(planes, 64),
    )
}

pub fn backward(gpu: &Gpu, planes: usize, plane: usize, dy: Slice, dx: Slice) -> Dispatch {
    let p = params(gpu, planes, plane);
    Kernel::new(gpu, "pool", "backward", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (3, dy), (4, dx)],
        grid_1d(planes * plane, 256),
    )
}
