//! Every GPU operation against its plain-Rust CPU reference (`cpu`), on shapes that exercise
//! the edges: batch 1, odd sizes, stride 2, lengths off the workgroup size. This is the one
//! list of cases: `cargo test` runs it (tests/suite/ops.rs) on every adapter it finds, and
//! `shakeshake selftest` runs it on the user's own adapter. The tuner uses the convolution
//! checks to refuse a kernel variant that computes wrongly on a shape before it is chosen.
//!
//! Errors are relative: the largest |got - want| over the largest |want| (or 1, when the
//! values are small), as `cpu::gradcheck::relative_error` measures.

pub mod batch_norm;
pub mod conv2d;
pub mod cross_entropy;
pub mod linear;
pub mod pool;
pub mod prepare_batch;
pub mod relu;
pub mod sgd;
pub mod shake;

use crate::cpu::gradcheck::relative_error;
use crate::gpu::{CompileError, Gpu};

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

/// A group of checks of one op, run together on one device.
pub struct Case {
    pub op: &'static str,
    pub name: &'static str,
    pub run: fn(&Gpu) -> Checked,
    /// The same checks at fewer shapes, where `run` checks each kernel at many: every variant
    /// and pass still once (see `Breadth::Sampled`).
    pub sampled: Option<fn(&Gpu) -> Checked>,
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
    const fn new(op: &'static str, name: &'static str, run: fn(&Gpu) -> Checked) -> Case {
        Case { op, name, run, sampled: None }
    }

    const fn sampled_by(self, sampled: fn(&Gpu) -> Checked) -> Case {
        Case { sampled: Some(sampled), ..self }
    }

    pub fn run_at(&self, gpu: &Gpu, breadth: Breadth) -> Checked {
        match (breadth, self.sampled) {
            (Breadth::Sampled, Some(sampled)) => sampled(gpu),
            (Breadth::Sampled, None) | (Breadth::Full, _) => (self.run)(gpu),
        }
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
    Case::new("linear", "forward and backward", linear::forward_and_backward),
    Case::new("cross_entropy", "metrics and gradient", cross_entropy::metrics_and_gradient),
    Case::new("sgd", "two steps", sgd::two_steps),
    Case::new("sgd", "ranges equal one range", sgd::ranges_equal_one_range),
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
    data.iter().map(|x| *x as f32 as f64).collect()
}

/// Test values in [-1, 1), rounded to f32.
pub fn values(n: usize, salt: u32) -> Vec<f64> {
    rounded(&crate::cpu::gradcheck::test_values(n, salt))
}
