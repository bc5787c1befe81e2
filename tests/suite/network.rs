//! The whole network: the CPU reference's gradients against finite differences, and the GPU
//! training step's loss, gradients and running statistics against the CPU reference, on a
//! small batch with the same (counter-based) shake coefficients and augmentation.

use crate::common::*;
use shakeshake::checks::Breadth;
use shakeshake::cpu::gradcheck::relative_error;
use shakeshake::gpu::Gpu;
use shakeshake::model::cpu_exec::{self, Batch};
use shakeshake::model::{Graph, Mode, ModelConfig, ParamStore};
use shakeshake::ops::conv2d::ConvPass;
use shakeshake::selftest::{self, test_batch};
use shakeshake::shapes::{Normalization, Precision};
use shakeshake::tuning::VariantChooser;
use shakeshake::tuning::conv2d::{candidates, key};

/// With beta = alpha ("keep") the backward pass is the loss's true gradient; the paper's
/// shake backward departs from it on purpose, and the GPU test covers that variant.
#[test]
fn cpu_reference_gradients_match_finite_differences() {
    let config = ModelConfig::with_variant(8, 4, "shake-keep-image").unwrap();
    let g = Graph::build(config, 2, Mode::Train);
    let store = ParamStore::init(&g.params, 7);
    let params = cpu_exec::params_f64(&store);
    let (pixels, labels) = test_batch(2);
    let batch = Batch { pixels: &pixels, labels: &labels, seed: 3, step: 11 };
    let norm = Normalization::CIFAR10;
    let step = cpu_exec::run(&g, &params, &batch, &norm);
    let eps = 1e-6;
    let mut checked = 0;
    for (p, spec) in g.params.iter().enumerate().filter(|(_, s)| s.trainable()) {
        // Two entries of every binding: the first and one in the middle.
        for i in [0, spec.len() / 2 + 1] {
            let mut probe = params.clone();
            probe[p][i] += eps;
            let up = cpu_exec::loss(&g, &probe, &batch, &norm);
            probe[p][i] -= 2.0 * eps;
            let down = cpu_exec::loss(&g, &probe, &batch, &norm);
            let numeric = (up - down) / (2.0 * eps);
            let analytic = step.grads[p][i];
            let err = relative_error(&[analytic], &[numeric], 1e-3);
            assert!(err < 1e-4, "{} [{i}]: analytic {analytic:.6e}, numeric {numeric:.6e}", spec.prefix);
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} entries checked");
}

/// The GPU training step's loss, gradients and running statistics against the CPU
/// reference: `selftest::network`, on every device. Where the edge shapes are sampled (a
/// second driver), the step runs each pass's first candidate rather than measuring them all
/// (`selftest` on every adapter, an ignored test, measures them there).
#[test]
fn gpu_training_step_matches_cpu_reference() {
    step_matches_cpu_reference(Precision::F32);
}

/// The same step with f16 activations (and the loss scale f16 training starts with), on the
/// devices that have f16 in shaders: the loss and running statistics within f16's rounding,
/// the gradients within `selftest::NETWORK_GRADIENT_L2_F16` of their norm (see there why
/// not closer).
#[test]
fn gpu_training_step_in_f16_matches_cpu_reference() {
    step_matches_cpu_reference(Precision::F16);
}

/// `selftest::network` in `precision` on every device that runs it (at least one).
fn step_matches_cpu_reference(precision: Precision) {
    let ran = std::cell::Cell::new(0);
    on_every_gpu(|| {
        if precision == Precision::F16 && !gpu().features.f16 {
            return;
        }
        ran.set(ran.get() + 1);
        let checks = match breadth() {
            Breadth::Full => selftest::network(gpu(), precision).unwrap(),
            Breadth::Sampled => {
                selftest::network_with(gpu(), precision, &mut first_candidates(gpu(), precision)).unwrap()
            }
        };
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| !c.passed())
            .map(|c| format!("  {}: error {:.3e} over {:.1e}", c.pass, c.max_error, c.tolerance))
            .collect();
        assert!(failed.is_empty(), "on {}:\n{}", gpu().describe(), failed.join("\n"));
        let worst = checks.iter().filter(|c| c.pass.starts_with("gradient")).map(|c| c.max_error);
        eprintln!("largest gradient error ({precision:?}): {:.2e}", worst.fold(0.0, f64::max));
    });
    assert!(ran.get() > 0, "no test device runs the step in {precision:?} (lavapipe has f16 in shaders)");
}

/// A chooser that takes each pass of the network's convolutions to its first candidate.
fn first_candidates(gpu: &Gpu, precision: Precision) -> VariantChooser {
    let mut chooser = VariantChooser::in_memory(gpu);
    for shape in selftest::network_graph(precision).conv_shapes() {
        for pass in ConvPass::ALL {
            let first = candidates(gpu, &shape, pass)[0];
            chooser.assume(&key(pass, &shape), first.name());
        }
    }
    chooser
}
