//! Every GPU operation against its plain-Rust CPU reference: the cases of
//! `shakeshake::checks` (the same list `shakeshake selftest` runs), on every device of
//! `common::gpus()`. One test an op and precision: f32 everywhere, f16 on the devices that
//! have f16 in shaders (lavapipe does, llvmpipe through GL does not).

use crate::common::*;
use shakeshake::checks::{Breadth, CASES};
use shakeshake::shapes::Precision;

/// Every case of `op` on every device, at each device's breadth (`common::breadths`); a
/// failure lists every check that failed.
fn passes_everywhere(op: &str) {
    passes_everywhere_at(op, Precision::F32, breadth);
}

/// As `passes_everywhere`, the f16 kernels, on the devices that run them (at least one),
/// each variant's pass at one edge shape (`Breadth::Sampled`) on every device: an f16 twin
/// is its f32 kernel's source with other loads and stores, so the edges of a shape, which
/// the f32 checks cover on every shape, do not change it. The whole matrix in f16 is part of
/// the ignored tests, as is `selftest` in f16.
fn passes_in_f16(op: &str) {
    passes_everywhere_at(op, Precision::F16, || Breadth::Sampled);
}

/// As `passes_everywhere`, in `precision`, with each device's breadth from `breadth_here`.
fn passes_everywhere_at(op: &str, precision: Precision, breadth_here: fn() -> Breadth) {
    let ran = std::cell::Cell::new(0);
    on_every_gpu(|| {
        let gpu = gpu();
        let cases: Vec<_> = CASES.iter().filter(|c| c.op == op).collect();
        assert!(!cases.is_empty(), "no cases of {op}");
        let cases: Vec<_> = cases.into_iter().filter(|c| c.runs_in(gpu, precision)).collect();
        ran.set(ran.get() + cases.len());
        let mut failed = vec![];
        for case in cases {
            let checks = case
                .run_at(gpu, precision, breadth_here())
                .unwrap_or_else(|e| panic!("{op}: {}: {e}", case.name));
            assert!(!checks.is_empty(), "{op}: {} checks nothing", case.name);
            failed.extend(checks.into_iter().filter(|c| !c.passed()).map(|c| {
                format!(
                    "  {} {} {} [{}]: error {:.3e} over tolerance {:.1e} {}",
                    c.op,
                    c.pass,
                    c.variant,
                    c.shape,
                    c.max_error,
                    c.tolerance,
                    c.failure.unwrap_or_default()
                )
            }));
        }
        assert!(failed.is_empty(), "on {}:\n{}", gpu.describe(), failed.join("\n"));
    });
    assert!(ran.get() > 0, "no test device runs {op} in {precision:?} (lavapipe has f16 in shaders)");
}

const TESTED: &[&str] = &[
    "conv2d",
    "batch_norm",
    "relu",
    "shake",
    "pool",
    "linear",
    "cross_entropy",
    "sgd",
    "loss_scale",
    "prepare_batch",
];

/// The ops with activations, whose f16 kernels have a test of their own.
const TESTED_IN_F16: &[&str] = &["conv2d", "batch_norm", "relu", "shake", "pool", "prepare_batch"];

#[test]
fn every_op_of_the_case_list_is_tested() {
    for case in CASES {
        assert!(TESTED.contains(&case.op), "{} has cases but no test here", case.op);
        let f16_tested = TESTED_IN_F16.contains(&case.op);
        assert_eq!(case.has_activations(), f16_tested, "{}: f16 kernels and f16 tests differ", case.op);
    }
}

#[test]
fn conv2d() {
    passes_everywhere("conv2d");
}

/// The edge shapes a second driver samples (`Breadth::Sampled`), all of them there too: the
/// exhaustive variant-by-device matrix, which CI runs beside the README's command.
#[test]
#[ignore = "the exhaustive matrix (minutes on a new machine): cargo test --release -- --ignored"]
fn conv2d_at_every_edge_shape_on_every_device() {
    passes_everywhere_at("conv2d", Precision::F32, || Breadth::Full);
    passes_everywhere_at("conv2d", Precision::F16, || Breadth::Full);
}

#[test]
fn conv2d_f16() {
    passes_in_f16("conv2d");
}

#[test]
fn batch_norm_f16() {
    passes_in_f16("batch_norm");
}

#[test]
fn relu_f16() {
    passes_in_f16("relu");
}

#[test]
fn shake_f16() {
    passes_in_f16("shake");
}

#[test]
fn pool_f16() {
    passes_in_f16("pool");
}

#[test]
fn prepare_batch_f16() {
    passes_in_f16("prepare_batch");
}

#[test]
fn batch_norm() {
    passes_everywhere("batch_norm");
}

#[test]
fn relu() {
    passes_everywhere("relu");
}

#[test]
fn shake() {
    passes_everywhere("shake");
}

#[test]
fn pool() {
    passes_everywhere("pool");
}

#[test]
fn linear() {
    passes_everywhere("linear");
}

#[test]
fn cross_entropy() {
    passes_everywhere("cross_entropy");
}

#[test]
fn sgd() {
    passes_everywhere("sgd");
}

#[test]
fn loss_scale() {
    passes_everywhere("loss_scale");
}

#[test]
fn prepare_batch() {
    passes_everywhere("prepare_batch");
}

/// A weight gradient split over pixels binds only its partial sums, not the whole scratch
/// buffer it shares with Winograd's matrices: for 3x3 32->32 at 32x32, batch 256, those
/// matrices together pass lavapipe's 128 MiB binding limit (one at a time they fit), and
/// binding the whole buffer was a validation error when the tuner chose Winograd there.
#[test]
fn a_split_weight_gradient_binds_only_its_partial_sums() {
    use shakeshake::ops::conv2d::{Conv2d, ConvPass, ConvVariant};
    use shakeshake::shapes::{ChannelWindow, Conv2dShape};
    let shape = Conv2dShape::new(256, 32, 32, 32, 32, 3, 1, 1);
    let variants = [ConvVariant::Winograd4x4, ConvVariant::Winograd4x4, ConvVariant::RegisterSubgroup];
    let conv = Conv2d::with_variants(shape, variants);
    let exercised = std::cell::Cell::new(0);
    on_every_gpu(|| {
        let gpu = gpu();
        let runs = ConvPass::ALL.into_iter().all(|pass| variants[pass as usize].supports(gpu, pass, &shape));
        let scratch_bytes = (conv.scratch_floats() * 4) as u64;
        if !runs || scratch_bytes <= gpu.limits.max_storage_buffer_binding_size {
            return;
        }
        assert!(conv.splits() > 1, "the weight gradient is split");
        let scratch = gpu.storage("scratch", conv.scratch_floats());
        let x = gpu.storage("x", shape.batch * shape.cin * shape.h * shape.w);
        let dy = gpu.storage("dy", shape.batch * shape.cout * shape.out_h * shape.out_w);
        let dw = gpu.storage("dw", shape.weight_len());
        let window = ChannelWindow::whole(&shape);
        let dispatches = conv
            .grad_weight(gpu, (&x).into(), (&dy).into(), (&dw).into(), window, Some((&scratch).into()))
            .unwrap();
        assert_eq!(dispatches.len(), 2, "partial sums, then their reduction");
        exercised.set(exercised.get() + 1);
    });
    assert!(exercised.get() > 0, "no adapter here runs Winograd with a binding limit below its scratch");
}

/// A variant that does not run a pass of a shape on a device says why, in words.
#[test]
fn a_variant_that_does_not_run_a_pass_says_why() {
    use shakeshake::ops::conv2d::{ConvPass::*, ConvVariant::*};
    use shakeshake::shapes::Conv2dShape;
    let no_subgroups = gpus().iter().find(|g| !g.features.subgroups).expect("a device without subgroups");
    let (wide, one_by_one) =
        (Conv2dShape::new(3, 20, 8, 8, 36, 3, 1, 1), Conv2dShape::new(2, 6, 5, 7, 20, 1, 1, 0));
    let why = |gpu, v: shakeshake::ops::conv2d::ConvVariant, pass, shape| match v.admits(gpu, pass, shape) {
        Ok(()) => panic!("{v:?} runs {pass:?} of {shape:?}"),
        Err(why) => why.to_string(),
    };
    assert_eq!(
        why(no_subgroups, RegisterSubgroup, Forward, &wide),
        "it needs subgroups, which this device does not offer"
    );
    assert!(
        why(no_subgroups, TiledN16, Forward, &wide).contains("16 channels wide, narrower than the pass's 36")
    );
    assert!(why(no_subgroups, Direct, GradWeight, &wide).contains("no weight gradient"));
    assert!(Tiled.admits(no_subgroups, GradWeight, &wide).is_ok());
    if let Some(with_subgroups) = gpus().iter().find(|g| g.features.subgroups) {
        assert!(
            why(with_subgroups, Winograd4x4, Forward, &one_by_one).contains("3x3 convolutions at stride 1")
        );
    }
}
