//! Softmax cross-entropy (shaders/cross_entropy.wgsl; reference `cpu::cross_entropy`).

use crate::gpu::{Dispatch, Gpu, Kernel, Slice, grid_1d};

/// Floats of the metrics buffer: loss sum, correct, images (accumulated), last batch's mean loss.
pub const METRICS_LEN: usize = 4;

fn params(gpu: &Gpu, batch: usize, classes: usize) -> wgpu::Buffer {
    gpu.uniform("loss params", &[batch as u32, classes as u32])
}

/// Adds this batch's loss and correct count into `metrics` (see METRICS_LEN).
pub fn forward(
    gpu: &Gpu,
    batch: usize,
    classes: usize,
    logits: Slice,
    labels: Slice,
    metrics: Slice,
) -> Dispatch {
    let p = params(gpu, batch, classes);
    Kernel::new(gpu, "cross_entropy", "forward", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (1, logits), (2, labels), (3, metrics)],
        [1, 1, 1],
    )
}

/// dlogits of the batch-mean loss.
pub fn backward(
    gpu: &Gpu,
    batch: usize,
    classes: usize,
    logits: Slice,
    labels: Slice,
    dlogits: Slice,
) -> Dispatch {
    let p = params(gpu, batch, classes);
    Kernel::new(gpu, "cross_entropy", "backward", &[]).dispatch(
        gpu,
        &[(0, (&p).into()), (1, logits), (2, labels), (4, dlogits)],
        grid_1d(batch, 64),
    )
}
