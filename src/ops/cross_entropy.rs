//! Softmax cross-entropy (shaders/cross_entropy.wgsl; reference `cpu::cross_entropy`).

use crate::gpu::{Binding, CompileError, Dispatch, Gpu, Kernel, ShaderInterface, Slice};
use crate::struct_layout;

/// Floats of the metrics buffer: loss sum, correct, images (accumulated), last batch's mean loss.
pub const METRICS_LEN: usize = 4;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LossParams {
    batch: u32,
    classes: u32,
}

const PARAMS: Binding = Binding::new(0, "lp");
const LOGITS: Binding = Binding::new(1, "logits");
const LABELS: Binding = Binding::new(2, "labels");
const METRICS: Binding = Binding::new(3, "metrics");
const DLOGITS: Binding = Binding::new(4, "dlogits");

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["cross_entropy"],
    bindings: &[PARAMS, LOGITS, LABELS, METRICS, DLOGITS],
    structs: &[struct_layout!(LossParams { batch, classes })],
    constants: &[],
};

fn params(gpu: &Gpu, batch: usize, classes: usize) -> wgpu::Buffer {
    gpu.uniform("loss params", &LossParams { batch: batch as u32, classes: classes as u32 })
}

/// Adds this batch's loss and correct count into `metrics` (see METRICS_LEN).
pub fn forward(
    gpu: &Gpu,
    batch: usize,
    classes: usize,
    logits: Slice,
    labels: Slice,
    metrics: Slice,
) -> Result<Dispatch, CompileError> {
    let p = params(gpu, batch, classes);
    Ok(Kernel::new(gpu, "cross_entropy", "forward", &[])?.dispatch(
        gpu,
        &[(PARAMS, (&p).into()), (LOGITS, logits), (LABELS, labels), (METRICS, metrics)],
        [1, 1, 1],
    ))
}

/// dlogits of the batch-mean loss.
pub fn backward(
    gpu: &Gpu,
    batch: usize,
    classes: usize,
    logits: Slice,
    labels: Slice,
    dlogits: Slice,
) -> Result<Dispatch, CompileError> {
    let p = params(gpu, batch, classes);
    Ok(Kernel::new(gpu, "cross_entropy", "backward", &[])?.dispatch(
        gpu,
        &[(PARAMS, (&p).into()), (LOGITS, logits), (LABELS, labels), (DLOGITS, dlogits)],
        gpu.grid_1d(batch),
    ))
}
