//! Every GPU operation against its plain-Rust CPU reference (`cpu`), on shapes that exercise
//! the edges: batch 1, odd sizes, stride 2, lengths off the workgroup size. This is the one
//! list of cases: `cargo test` runs it (tests/suite/ops.rs) on every adapter it finds, and
//! `shakeshake selftest` runs it on the user's own adapter. The tuner uses the convolution
//! checks to refuse a kernel variant that computes wrongly on a shape before it is chosen.
//!
//! Errors are relative: the largest |got - want| over the largest |want| (or 1, when the
//! values are small), as `cpu::gradcheck::relative_error` measures.
//!
//! Cases of ops that read or write activations run in each precision the device offers
//! (`Precision`): with f16, their inputs are rounded to f16 before the reference sees them,
//! and an output stored in f16 is held to `F16_STORED` (below) rather than the case's own
//! tolerance; an f32 output (a weight gradient, statistics) keeps the case's tolerance, since
//! every kernel computes in f32 whatever it stores.

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

use crate::cpu::gradcheck::relative_error;
use crate::gpu::{CompileError, Gpu};
use crate::shapes::Precision;

/// The tolerance of an output stored in f16: its 11 significant bits round a value by up to
/// 2^-11 (4.9e-4) of itself, so of the largest; twice that leaves room for the f32 sums.
pub const F16_STORED: f64 = 1e-3;

/// The tolerance of an output stored in `precision`, for a case whose f32 tolerance is `f32`.
pub fn stored_tolerance(f32: f64, precision: Precision) -> f64 {
    match precision {
        Precision::F32 => f32,
        Precision::F16 => f32.max(F16_STORED),
    }
}

/// A case's checks, or the kernel the driver would not compile for it.
pub type Checked = Result<Vec<Check>, CompileError>;

/// One comparison of a GPU result with its reference.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Check {
    pub op: &'static str,
    /// Which output: `forward`, `grad_input`, `running stats`, ...
    pub pass: String,
    /// The kernel variant, or `-` for ops with one kernel.
    pub variant: String,
    pub shape: String,
    /// The element type of the activations the kernel read and wrote: "f32" or "f16".
    pub precision: &'static str,
    pub max_error: f64,
    pub tolerance: f64,
    /// Why the kernel could not run at all (the driver would not compile it); the error is
    /// then NaN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl Check {
    /// A check of a kernel that did not compile: failed, saying why.
    pub fn not_compiled(
        op: &'static str,
        pass: &str,
        variant: &str,
        shape: &str,
        tolerance: f64,
        failed: &CompileError,
    ) -> Check {
        Check {
            op,
            pass: pass.to_string(),
            variant: variant.to_string(),
            shape: shape.to_string(),
            precision: Precision::F32.name(),
            max_error: f64::NAN,
            tolerance,
            failure: Some(failed.to_string()),
        }
    }

    /// Within tolerance; a NaN error never is.
    pub fn passed(&self) -> bool {
        self.max_error <= self.tolerance
    }
}

/// A group of checks of one op, run together on one device in one precision.
pub struct Case {
    pub op: &'static str,
    pub name: &'static str,
    pub run: fn(&Gpu, Precision) -> Checked,
    /// The same checks at fewer shapes, where `run` checks each kernel at many: every variant
    /// and pass still once (see `Breadth::Sampled`).
    pub sampled: Option<fn(&Gpu, Precision) -> Checked>,
    /// The precisions its kernels store activations in: both for an op that has activations,
    /// f32 alone for one that has none (linear, the loss, SGD).
    precisions: &'static [Precision],
}

/// How many of the edge shapes a case checks each kernel at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breadth {
    /// Every one (`selftest`; the tests on their first adapter).
    Full,
    /// Each variant's passes at one: what the tests run on a second driver, where a wrong
    /// result would come from its compiler or shader translation, which an edge of the shape
    /// does not change, and where each edge shape compiles its own pipelines.
    Sampled,
}

impl Case {
    const fn new(op: &'static str, name: &'static str, run: fn(&Gpu, Precision) -> Checked) -> Case {
        Case { op, name, run, sampled: None, precisions: &Precision::ALL }
    }

    const fn sampled_by(self, sampled: fn(&Gpu, Precision) -> Checked) -> Case {
        Case { sampled: Some(sampled), ..self }
    }

    /// A case of an op without activations: f32 alone.
    const fn f32_only(self) -> Case {
        Case { precisions: &[Precision::F32], ..self }
    }

    /// Whether its op reads or writes activations (so has f16 kernels to check).
    pub fn has_activations(&self) -> bool {
        self.precisions.contains(&Precision::F16)
    }

    /// Whether it runs in `precision` on `gpu` (f16 needs f16 in shaders).
    pub fn runs_in(&self, gpu: &Gpu, precision: Precision) -> bool {
        self.precisions.contains(&precision) && (precision == Precision::F32 || gpu.features.f16)
    }

    /// The checks in `precision` (which must be one it `runs_in`).
    pub fn run_at(&self, gpu: &Gpu, precision: Precision, breadth: Breadth) -> Checked {
        assert!(self.runs_in(gpu, precision), "{} {}: not in {precision:?} here", self.op, self.name);
        let mut checks = match (breadth, self.sampled) {
            (Breadth::Sampled, Some(sampled)) => sampled(gpu, precision),
            (Breadth::Sampled, None) | (Breadth::Full, _) => (self.run)(gpu, precision),
        }?;
        checks.iter_mut().for_each(|c| c.precision = precision.name());
        Ok(checks)
    }
}

/// Every case, by op.
pub const CASES: &[Case] = &[
    Case::new("conv2d", "edge shapes, every variant and pass", conv2d::edge_shapes)
        .sampled_by(conv2d::edge_shapes_sampled),
    Case::new("conv2d", "weight gradient over a full batch", conv2d::full_batch_grad_weight),
    Case::new("conv2d", "projection shortcut", conv2d::projection_shortcut),
    Case::new("conv2d", "passes cut by images", conv2d::cut_by_images)
        .sampled_by(conv2d::cut_by_images_sampled),
    Case::new("batch_norm", "small shapes", batch_norm::small_shapes),
    Case::new("batch_norm", "statistics over a full batch", batch_norm::full_batch),
    Case::new("relu", "forward and backward", relu::forward_and_backward),
    Case::new("shake", "every mode and level", shake::every_mode),
    Case::new("pool", "forward and backward", pool::forward_and_backward),
    Case::new("linear", "forward and backward", linear::forward_and_backward).f32_only(),
    Case::new("cross_entropy", "metrics and gradient", cross_entropy::metrics_and_gradient).f32_only(),
    Case::new("sgd", "two steps", sgd::two_steps).f32_only(),
    Case::new("sgd", "ranges equal one range", sgd::ranges_equal_one_range).f32_only(),
    Case::new(
        "loss_scale",
        "an overflow skips the step, clean steps grow the scale",
        loss_scale::overflow_skips_and_clean_steps_grow,
    )
    .f32_only(),
    Case::new("prepare_batch", "normalise, crop and flip", prepare_batch::normalise_crop_flip),
];

/// `got` against `want`.
pub fn compare(
    op: &'static str,
    pass: &str,
    variant: &str,
    shape: &str,
    got: &[f32],
    want: &[f64],
    tolerance: f64,
) -> Check {
    let max_error = if got.len() == want.len() { relative_error(got, want, 1.0) } else { f64::NAN };
    Check {
        op,
        pass: pass.to_string(),
        variant: variant.to_string(),
        shape: shape.to_string(),
        precision: Precision::F32.name(),
        max_error,
        tolerance,
        failure: None,
    }
}

/// A storage buffer of `data` as f32.
pub fn upload(gpu: &Gpu, data: &[f64]) -> wgpu::Buffer {
    let v: Vec<f32> = data.iter().map(|x| *x as f32).collect();
    gpu.storage_from("check input", &v)
}

/// The values as the GPU sees them (rounded to f32), so references start from the same inputs.
pub fn rounded(data: &[f64]) -> Vec<f64> {
    rounded_to(data, Precision::F32)
}

/// The values as stored in `precision`.
pub fn rounded_to(data: &[f64], precision: Precision) -> Vec<f64> {
    data.iter().map(|x| precision.round(*x)).collect()
}

/// Test values in [-1, 1), rounded to f32.
pub fn values(n: usize, salt: u32) -> Vec<f64> {
    values_in(n, salt, Precision::F32)
}

/// Test values in [-1, 1), rounded to `precision`: activations' inputs.
pub fn values_in(n: usize, salt: u32, precision: Precision) -> Vec<f64> {
    rounded_to(&crate::cpu::gradcheck::test_values(n, salt), precision)
}

/// A buffer of activations holding `data` in `precision`.
pub fn upload_in(gpu: &Gpu, data: &[f64], precision: Precision) -> wgpu::Buffer {
    let v: Vec<f32> = data.iter().map(|x| *x as f32).collect();
    gpu.activations_from("check input", &v, precision)
}
