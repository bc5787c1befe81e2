//! `shakeshake selftest`: the shader checks on the user's own adapter. Every case of
//! `checks::CASES` (every op, every variant, edge shapes) and one training step of a small
//! network against the CPU reference: loss, every gradient and the running statistics; in
//! each precision asked for that the adapter runs. The tests run the same cases
//! (tests/suite/ops.rs, tests/suite/network.rs).

use crate::checks::{self, Check};
use crate::cpu::gradcheck::{relative_error, relative_l2_error};
use crate::gpu::Gpu;
use crate::model::cpu_exec::{self, Batch};
use crate::model::gpu_params::GpuParams;
use crate::model::gpu_step::StepGraph;
use crate::model::{Graph, Mode, ModelConfig, ParamStore};
use crate::ops::StepUniform;
use crate::shapes::{LossScale, LossScaling, Normalization, Precision, SgdSettings};
use crate::tuning::VariantChooser;
use anyhow::Result;

/// The network check's tolerance: 1e-4 of the largest gradient of each parameter binding
/// (measured: 7e-6 on lavapipe), of the loss, and of the running statistics.
pub const NETWORK_TOLERANCE: f64 = 1e-4;

/// With f16 activations, against the same f64 reference: the loss and the running
/// statistics within `checks::F16_STORED` (measured: 4e-5 and 1e-4 on lavapipe). The
/// gradients move far more, and not for a fault of the kernels: on this batch of 3 each
/// batch norm's backward subtracts nearly equal sums, which turns the f16 roundings of its
/// inputs into errors of 1e-2 to 1e-1 of a gradient (the CPU reference rounding its own
/// stored tensors to f16 moves its gradients as far: measured 7e-3 to 9.9e-2, and the GPU's
/// 7e-3 to 1.4e-1, relative L2). So the gradients are held as whole vectors, to
/// `NETWORK_GRADIENT_L2_F16` of their norm: enough to catch a scale or a conversion gone
/// wrong (an error of 1 or more), not a rounding.
pub const NETWORK_GRADIENT_L2_F16: f64 = 0.3;

/// The network check's tolerance in `precision` (of the loss and running statistics; of the
/// gradients too in f32).
pub fn network_tolerance(precision: Precision) -> f64 {
    crate::checks::stored_tolerance(NETWORK_TOLERANCE, precision)
}

/// A batch of deterministic pixels and labels.
pub fn test_batch(n: usize) -> (Vec<u8>, Vec<u32>) {
    let pixels = (0..n * 3072).map(|i| (crate::random::pcg_hash(i as u32 ^ 0x5eed) % 256) as u8).collect();
    let labels = (0..n as u32).map(|i| (i * 3 + 1) % 10).collect();
    (pixels, labels)
}

/// One GPU training step of Shake-Shake 8 2x8d on 3 images against `cpu_exec`, with the
/// same (counter-based) shake coefficients and augmentation; kernel variants chosen as a
/// training run would. Twice: batch norm over the whole batch, and over ghost batches of 2
/// images (`--bn-group 2`: 2 and 1).
pub fn network(gpu: &Gpu, precision: Precision) -> Result<Vec<Check>> {
    network_with(gpu, precision, &mut VariantChooser::in_memory(gpu))
}

/// The graph `network` checks.
pub fn network_graph(precision: Precision) -> Graph {
    Graph::build(ModelConfig::new(8, 8).expect("8 2x8d is a network"), 3, Mode::Train).in_precision(precision)
}

/// `network` with the kernel variants `chooser` gives.
pub fn network_with(gpu: &Gpu, precision: Precision, chooser: &mut VariantChooser) -> Result<Vec<Check>> {
    let mut checks = network_step(gpu, &network_graph(precision), chooser)?;
    checks.extend(network_step(gpu, &network_graph(precision).with_ghost_batches(Some(2)), chooser)?);
    Ok(checks)
}

/// One step of `g` against the CPU reference.
fn network_step(gpu: &Gpu, g: &Graph, chooser: &mut VariantChooser) -> Result<Vec<Check>> {
    let (config, batch_size, seed, step_index) = (g.config, g.batch, 5, 2);
    let store = ParamStore::init(&g.params, 1);
    let (pixels, labels) = test_batch(batch_size);
    let norm = Normalization::CIFAR10;
    let batch = Batch { pixels: &pixels, labels: &labels, seed, step: step_index };
    let want = cpu_exec::run(g, &cpu_exec::params_f64(&store), &batch, &norm);

    let params = GpuParams::upload(gpu, &store, None);
    // f16 activations train with a loss scale: the gradients come out that much larger.
    let scale = LossScale::start(g.precision, &LossScaling::PYTORCH);
    params.set_loss_scale(gpu, scale);
    let step = StepGraph::new(gpu, g, &params, &norm, &SgdSettings::PAPER, chooser, None)?;
    params.set_metrics(gpu, &[0.0; crate::ops::cross_entropy::METRICS_LEN], 0);
    step.submit(gpu, &params, &pixels, &labels, StepUniform { step: step_index, seed, lr: 0.0, _pad: 0 });
    let metrics: Vec<f32> = gpu.read(&params.metrics);

    let mut shape = format!("{} batch {batch_size}", config.paper_name());
    if g.bn_ghosts() > 1 {
        shape += &format!(", batch norm over groups of {}", g.bn_ghost);
    }
    let tolerance = network_tolerance(g.precision);
    let check = |pass: String, max_error: f64, tolerance: f64| Check {
        op: "network",
        pass,
        variant: "-".into(),
        shape: shape.clone(),
        precision: g.precision.name(),
        max_error,
        tolerance,
        failure: None,
    };
    let mut checks = vec![
        check("loss".into(), relative_error(&metrics[3..4], &[want.loss], 1.0), tolerance),
        check("correct predictions".into(), (metrics[1] as f64 - want.correct as f64).abs(), 0.0),
        check(
            "steps counted".into(),
            (metrics[crate::ops::cross_entropy::STEP_COUNTER] as f64 - 1.0).abs(),
            0.0,
        ),
    ];
    let mut grads = params.download_grads(gpu)?;
    grads.iter_mut().flatten().for_each(|v| *v /= scale.scale);
    let after = params.download(gpu)?;
    for (p, spec) in g.params.iter().enumerate() {
        let (pass, error, tolerance) = match (spec.trainable(), g.precision) {
            (true, Precision::F32) => (
                format!("gradient {}", spec.prefix),
                relative_error(&grads[p], &want.grads[p], f64::MIN_POSITIVE),
                tolerance,
            ),
            (true, Precision::F16) => (
                format!("gradient {} (L2)", spec.prefix),
                relative_l2_error(&grads[p], &want.grads[p], f64::MIN_POSITIVE),
                NETWORK_GRADIENT_L2_F16,
            ),
            (false, _) => (
                format!("running stats {}", spec.prefix),
                relative_error(&after.values[p], &want.params_after[p], 1.0),
                tolerance,
            ),
        };
        checks.push(check(pass, error, tolerance));
    }
    Ok(checks)
}

/// Every check in each of `precisions` (each one the adapter runs: f16 needs f16 in
/// shaders), each given to `report` as it is made.
pub fn run(gpu: &Gpu, precisions: &[Precision], mut report: impl FnMut(&Check)) -> Vec<Check> {
    let mut all = vec![];
    for &precision in precisions {
        assert!(precision == Precision::F32 || gpu.features.f16, "f16 asked of a device without it");
        for case in checks::CASES.iter().filter(|case| case.runs_in(gpu, precision)) {
            // A kernel of the case that does not compile fails the case, reported with the others.
            let checks = case.run_at(gpu, precision, checks::Breadth::Full).unwrap_or_else(|failed| {
                let check = Check::not_compiled(case.op, case.name, "-", "-", f64::NAN, &failed);
                vec![Check { precision: precision.name(), ..check }]
            });
            for check in checks {
                report(&check);
                all.push(check);
            }
        }
        // A network that cannot be built (no kernel variant computes some shape correctly, or
        // a kernel does not compile) is a failed check, reported with the others.
        let network_checks = network(gpu, precision).unwrap_or_else(|e| {
            vec![Check {
                op: "network",
                pass: "building the step".into(),
                variant: "-".into(),
                shape: "8 2x8d batch 3".into(),
                precision: precision.name(),
                max_error: f64::NAN,
                tolerance: network_tolerance(precision),
                failure: Some(format!("{e:#}")),
            }]
        });
        for check in network_checks {
            report(&check);
            all.push(check);
        }
    }
    all
}
