//! Softmax cross-entropy (shaders/cross_entropy.wgsl; reference `cpu::cross_entropy`).

use crate::gpu::{Binding, CompileError, Dispatch, Gpu, Kernel, ShaderInterface, Slice};
use crate::shapes::BatchShare;
use crate::struct_layout;

/// The metrics accumulators: loss sum, correct, images (accumulated), last batch's mean loss.
pub const METRICS_LEN: usize = 4;
/// Where the metrics buffer counts the steps that ran to their end (`count_step`), after
/// the accumulators.
pub const STEP_COUNTER: usize = METRICS_LEN;
/// Floats of the metrics buffer.
pub const METRICS_FLOATS: usize = METRICS_LEN + 1;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LossParams {
    batch: u32,
    classes: u32,
    mean_over: u32,
    _pad: u32,
}

const PARAMS: Binding = Binding::new(0, "lp");
const LOGITS: Binding = Binding::new(1, "logits");
const LABELS: Binding = Binding::new(2, "labels");
const METRICS: Binding = Binding::new(3, "metrics");
const DLOGITS: Binding = Binding::new(4, "dlogits");
const LOSS_SCALE: Binding = Binding::new(5, "loss_scale");

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["cross_entropy"],
    bindings: &[PARAMS, LOGITS, LABELS, METRICS, DLOGITS, LOSS_SCALE],
    structs: &[struct_layout!(LossParams { batch, classes, mean_over }), super::loss_scale::STATE_LAYOUT],
    constants: &[],
};

fn params(gpu: &Gpu, batch: usize, classes: usize, mean_over: usize) -> wgpu::Buffer {
    let (batch, classes, mean_over) = (batch as u32, classes as u32, mean_over as u32);
    gpu.uniform("loss params", &LossParams { batch, classes, mean_over, _pad: 0 })
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
    let p = params(gpu, batch, classes, batch);
    Ok(Kernel::new(gpu, "cross_entropy", "forward", &[])?.dispatch(
        gpu,
        &[(PARAMS, (&p).into()), (LOGITS, logits), (LABELS, labels), (METRICS, metrics)],
        [1, 1, 1],
    ))
}

/// One more step counted in `metrics[STEP_COUNTER]`: recorded last in every step.
pub fn count_step(gpu: &Gpu, metrics: Slice) -> Result<Dispatch, CompileError> {
    Ok(Kernel::new(gpu, "cross_entropy", "count_step", &[])?.dispatch(gpu, &[(METRICS, metrics)], [1, 1, 1]))
}

/// dlogits of the loss's mean over `share.whole_batch` images, of which these are `batch`,
/// times the scale in `loss_scale` (a state buffer of `ops::loss_scale`).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    gpu: &Gpu,
    batch: usize,
    share: BatchShare,
    classes: usize,
    logits: Slice,
    labels: Slice,
    dlogits: Slice,
    loss_scale: Slice,
) -> Result<Dispatch, CompileError> {
    let p = params(gpu, batch, classes, share.whole_batch);
    let bindings = [
        (PARAMS, (&p).into()),
        (LOGITS, logits),
        (LABELS, labels),
        (DLOGITS, dlogits),
        (LOSS_SCALE, loss_scale),
    ];
    Ok(Kernel::new(gpu, "cross_entropy", "backward", &[])?.dispatch(gpu, &bindings, gpu.grid_1d(batch)))
}
