//! GPU dispatch of each operation. Each module builds its pipelines and dispatches once;
//! its shader is `shaders/<name>.wgsl`, its CPU reference `cpu::<name>`, its tests
//! `tests/<name>.rs`.

pub mod batch_norm;
pub mod conv2d;
pub mod cross_entropy;
pub mod linear;
pub mod pool;
pub mod prepare_batch;
pub mod relu;
pub mod sgd;
pub mod shake;
pub mod variants;

pub use crate::gpu::{Dispatch, Slice};

/// The per-step values every step-dependent kernel reads (shaders/step.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepUniform {
    pub step: u32,
    pub seed: u32,
    pub lr: f32,
    pub _pad: u32,
}
