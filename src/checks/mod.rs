//! Every GPU operation against its plain-Rust CPU reference (`cpu`), on shapes that exercise
//! the edges: batch 1, odd sizes, stride 2, lengths off the workgroup size. This is the one
//! list of cases: `cargo test` runs it (tests/ops) on every adapter it finds, and
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
}

/// Every case, by op.
pub const CASES: &[Case] = &[
    Case { op: "conv2d", name: "edge shapes, every variant and pass", run: conv2d::edge_shapes },
    Case { op: "conv2d", name: "weight gradient over a full batch", run: conv2d::full_batch_grad_weight },
    Case { op: "conv2d", name: "projection shortcut", run: conv2d::projection_shortcut },
    Case { op: "conv2d", name: "passes cut by images", run: conv2d::cut_by_images },
    Case { op: "batch_norm", name: "small shapes", run: batch_norm::small_shapes },
    Case { op: "batch_norm", name: "statistics over a full batch", run: batch_norm::full_batch },
    Case { op: "relu", name: "forward and backward", run: relu::forward_and_backward },
    Case { op: "shake", name: "every mode and level", run: shake::every_mode },
    Case { op: "pool", name: "forward and backward", run: pool::forward_and_backward },
    Case { op: "linear", name: "forward and backward", run: linear::forward_and_backward },
    Case { op: "cross_entropy", name: "metrics and gradient", run: cross_entropy::metrics_and_gradient },
    Case { op: "sgd", name: "two steps", run: sgd::two_steps },
    Case { op: "sgd", name: "ranges equal one range", run: sgd::ranges_equal_one_range },
    Case { op: "prepare_batch", name: "normalise, crop and flip", run: prepare_batch::normalise_crop_flip },
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
