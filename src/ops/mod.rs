//! GPU dispatch of each operation. Each module builds its pipelines and dispatches once and
//! states its shader interface (`INTERFACE`); its shader is `shaders/<name>.wgsl` (the
//! convolutions: `shaders/conv2d/`), its CPU reference `cpu::<name>`, its checks
//! against that reference `checks::<name>` (run by tests/suite/ops.rs and `selftest`). Which variant
//! of a kernel runs is chosen by `tuning`.

pub mod batch_norm;
pub mod conv2d;
pub mod cross_entropy;
pub mod linear;
pub mod loss_scale;
pub mod pool;
pub mod prepare_batch;
pub mod relu;
pub mod sgd;
pub mod shake;

pub use crate::gpu::{Dispatch, Slice};

/// The per-step values every step-dependent kernel reads (shaders/step.wgsl), bound as
/// `st` by the modules that draw random numbers or read the learning rate.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepUniform {
    pub step: u32,
    pub seed: u32,
    pub lr: f32,
    pub _pad: u32,
}

/// Every module's interface: what `gpu::interface::check` holds the WGSL to.
pub fn interfaces() -> Vec<crate::gpu::ShaderInterface> {
    let mut all = conv2d::INTERFACES.to_vec();
    all.extend([
        batch_norm::INTERFACE,
        relu::INTERFACE,
        shake::INTERFACE,
        pool::INTERFACE,
        linear::INTERFACE,
        cross_entropy::INTERFACE,
        sgd::INTERFACE,
        loss_scale::INTERFACE,
        prepare_batch::INTERFACE,
    ]);
    all
}

pub(crate) const STEP_UNIFORM: crate::gpu::interface::StructLayout =
    crate::struct_layout!(StepUniform { step, seed, lr });

/// The most floats of a flat parameter buffer one storage binding may hold on `gpu`: its
/// binding limit, rounded down to where a binding may start.
pub(crate) fn floats_per_binding(gpu: &crate::gpu::Gpu) -> usize {
    let align = crate::gpu::buffers::binding_alignment_floats(&gpu.limits);
    (gpu.limits.max_storage_buffer_binding_size as usize / 4) / align * align
}

/// `len` floats in ranges of at most `per_range`: (first, count) each.
pub(crate) fn ranges(len: usize, per_range: usize) -> impl Iterator<Item = (u64, u64)> {
    (0..len).step_by(per_range).map(move |first| (first as u64, per_range.min(len - first) as u64))
}

#[cfg(test)]
mod tests {
    use crate::gpu::interface::check;
    use crate::gpu::shaders::MODULES;

    #[test]
    fn every_module_agrees_with_its_rust_interface() {
        let all = super::interfaces();
        for module in MODULES {
            let covered = all.iter().filter(|i| i.modules.contains(&module.name)).count();
            assert_eq!(covered, 1, "{} should be in exactly one interface", module.name);
        }
        let errors: Vec<String> = all.iter().flat_map(check).collect();
        assert!(errors.is_empty(), "WGSL and Rust disagree:\n{}", errors.join("\n"));
    }
}
