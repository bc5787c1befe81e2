//! `shakeshake kernels`: create every pipeline a network's training and evaluation could use
//! on this adapter, dispatching nothing. Each pipeline's label is printed as it is created,
//! so a driver layer that reports on pipelines (the AMD compiler statistics of
//! scripts/amd-stats.sh) can name each one, and a pipeline the driver will not compile is
//! listed with the compiler's message.

use crate::gpu::Gpu;
use crate::model::gpu_params::GpuParams;
use crate::model::gpu_step::StepGraph;
use crate::model::{Graph, Mode, ModelConfig, ParamStore};
use crate::ops::conv2d::{Conv2d, ConvPass, ConvVariant};
use crate::shapes::{Normalization, Precision, SgdSettings};
use crate::tuning::{VariantChooser, conv2d as tuner};

/// What was created, and what would not compile.
pub struct Created {
    pub pipelines: usize,
    pub failed: Vec<String>,
}

/// How the pipelines are created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The convolutions' on every core (`create_in_parallel`), as a run on a GPU does: how
    /// long compiling takes. Labels are printed in the order pipelines start.
    Parallel,
    /// One at a time, each label printed before its pipeline is created: for a driver layer
    /// that reports on each pipeline as it is created (scripts/amd-stats.sh).
    OneAtATime,
}

/// Every convolution variant of every pass of `config`'s layers at `batch`, activations in
/// `precision` (with `all_variants`, every one the device supports; else those the tuner
/// would consider here), then the rest of the training and evaluation steps with the first
/// variant of each pass that compiled. `report` gets a line for each convolution tried.
pub fn create_all(
    gpu: &Gpu,
    config: ModelConfig,
    batch: usize,
    precision: Precision,
    all_variants: bool,
    order: Order,
    mut report: impl FnMut(&str),
) -> anyhow::Result<Created> {
    // Nothing runs here, so no pass is timed to be cut for a dispatch budget (the pieces of
    // a cut pass run the whole pass's pipelines anyway).
    let gpu = &gpu.with_dispatch_budget_ms(None);
    gpu.announce_new_kernels();
    let train = Graph::build(config, batch, Mode::Train).in_precision(precision);
    let mut chooser = VariantChooser::in_memory(gpu);
    let mut failed = vec![];
    let shapes = train.conv_shapes();
    let variants = |shape, pass| {
        if all_variants {
            (crate::checks::conv2d::variants_for(gpu, pass, &shape), vec![])
        } else {
            tuner::offer(gpu, &shape, pass)
        }
    };
    if order == Order::Parallel {
        let passes = shapes.iter().flat_map(|s| ConvPass::ALL.map(|pass| (*s, pass)));
        let every: Vec<_> = passes.map(|(s, pass)| (s, pass, variants(s, pass).0)).collect();
        // What did not compile is listed by the loop below.
        tuner::create_variants(gpu, &every, &|_, _| {});
    }
    for shape in shapes {
        for pass in ConvPass::ALL {
            let (variants, left_out) = variants(shape, pass);
            for (v, why) in left_out {
                report(&format!("{} {}: left out, {why}", tuner::key(pass, &shape), v.name()));
            }
            let mut compiled: Vec<ConvVariant> = vec![];
            for v in variants {
                report(&format!("{} {}", tuner::key(pass, &shape), v.name()));
                match Conv2d::with_variants(shape, [v; 3]).compile(gpu, pass) {
                    Ok(()) => compiled.push(v),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            if let Some(first) = compiled.first() {
                chooser.assume(&tuner::key(pass, &shape), first.name());
            }
        }
    }
    report("the rest of the training and evaluation steps");
    let params = GpuParams::upload(gpu, &ParamStore::init(&train.params, 0), None);
    for mode in [Mode::Train, Mode::Eval] {
        let graph = Graph::build(config, batch, mode).in_precision(precision);
        let (norm, sgd) = (Normalization::CIFAR10, SgdSettings::PAPER);
        if let Err(e) = StepGraph::new(gpu, &graph, &params, &norm, &sgd, &mut chooser, None) {
            failed.push(format!("{e:#}"));
        }
    }
    gpu.check_alive()?;
    Ok(Created { pipelines: gpu.kernels_made().0, failed })
}
