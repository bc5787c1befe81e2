//! `shakeshake bench train`: steady-state training throughput of a whole step; per
//! operation kind, its dispatches, the bytes they bind and its share of GPU time.

use crate::gpu::{Dispatch, Gpu};
use crate::model::gpu_params::GpuParams;
use crate::model::gpu_step::StepGraph;
use crate::model::{Graph, Mode, ModelConfig, ParamStore};
use crate::ops::StepUniform;
use crate::shapes::{Normalization, SgdSettings};
use crate::tuning::VariantChooser;
use serde::Serialize;
use std::time::Instant;

/// Steady-state training throughput, and where the GPU's time goes.
#[derive(Serialize, Debug)]
pub struct TrainFigure {
    pub images_per_second: f64,
    pub step_ms: f64,
    pub depth: usize,
    pub width: usize,
    pub batch: usize,
    pub variant: String,
    pub dispatches_per_step: usize,
    /// Bytes bound by every dispatch of a step (see `Dispatch::bytes`): the memory traffic
    /// the step cannot do without.
    pub bytes_per_step: u64,
    pub adapter: String,
    /// Pipelines this process created: the step's and those the tuner checked and timed (a
    /// driver compiles each one, on lavapipe at its first dispatch).
    pub pipelines: usize,
    /// Per operation kind, by GPU time where the device has timestamps (else by bytes).
    pub kinds: Vec<KindFigure>,
}

/// One kind of operation in a step ("conv2d forward", "batch_norm normalize", ...).
#[derive(Serialize, Debug)]
pub struct KindFigure {
    pub kind: String,
    pub dispatches: usize,
    pub bytes: u64,
    /// Milliseconds a step and share of the step's GPU time (with timestamps only).
    pub ms: Option<f64>,
    pub share: Option<f64>,
}

/// Time `steps` training steps after `warm_up` steps (the first compiles every pipeline).
pub fn train_figure(
    gpu: &Gpu,
    config: ModelConfig,
    batch: usize,
    warm_up: usize,
    steps: usize,
) -> anyhow::Result<TrainFigure> {
    let graph = Graph::build(config, batch, Mode::Train);
    let params = GpuParams::upload(gpu, &ParamStore::init(&graph.params, 0), None);
    let settings = SgdSettings::PAPER;
    let mut chooser = VariantChooser::for_adapter(gpu);
    let step_graph =
        StepGraph::new(gpu, &graph, &params, &Normalization::CIFAR10, &settings, &mut chooser, None)?;
    let pixels: Vec<u8> =
        (0..batch * 3072).map(|i| (crate::random::pcg_hash(i as u32) % 256) as u8).collect();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let run = |step: u32| {
        step_graph.submit(gpu, &params, &pixels, &labels, StepUniform { step, seed: 1, lr: 0.01, _pad: 0 });
    };
    for s in 0..warm_up {
        run(s as u32);
    }
    gpu.wait();
    let start = Instant::now();
    for s in 0..steps {
        run((warm_up + s) as u32);
    }
    gpu.wait();
    let step_ms = start.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64;

    let dispatches: Vec<&Dispatch> = step_graph.dispatches().iter().collect();
    let mut kinds: Vec<KindFigure> = vec![];
    for d in &dispatches {
        let kind = operation_kind(&d.label);
        let entry = match kinds.iter().position(|k| k.kind == kind) {
            Some(i) => &mut kinds[i],
            None => {
                kinds.push(KindFigure { kind, dispatches: 0, bytes: 0, ms: None, share: None });
                kinds.last_mut().expect("just pushed")
            }
        };
        entry.dispatches += 1;
        entry.bytes += d.bytes;
    }
    if let Some(times) = gpu.profile(&dispatches) {
        let total: f64 = times.iter().sum();
        for (d, ms) in dispatches.iter().zip(times) {
            let kind = operation_kind(&d.label);
            let entry = kinds.iter_mut().find(|k| k.kind == kind).expect("every kind listed");
            *entry.ms.get_or_insert(0.0) += ms;
        }
        kinds.iter_mut().for_each(|k| k.share = k.ms.map(|ms| ms / total));
    }
    kinds.sort_by(|a, b| b.ms.unwrap_or(0.0).total_cmp(&a.ms.unwrap_or(0.0)).then(b.bytes.cmp(&a.bytes)));
    Ok(TrainFigure {
        images_per_second: batch as f64 / (step_ms / 1e3),
        step_ms,
        depth: config.depth,
        width: config.width,
        batch,
        variant: config.variant_name(),
        dispatches_per_step: dispatches.len(),
        bytes_per_step: dispatches.iter().map(|d| d.bytes).sum(),
        adapter: gpu.describe(),
        pipelines: gpu.kernels_made().0,
        kinds,
    })
}

/// "conv2d_forward_register_subgroup::main[...]" -> "conv2d_forward", "batch_norm::normalize[]"
/// -> "batch_norm normalize".
fn operation_kind(label: &str) -> String {
    let (module, rest) = label.split_once("::").unwrap_or((label, ""));
    let entry = rest.split('[').next().unwrap_or("");
    match module.strip_prefix("conv2d_") {
        Some(conv) => {
            let pass = ["forward", "grad_input", "grad_weight"].into_iter().find(|p| conv.starts_with(p));
            format!("conv2d {}", pass.unwrap_or(conv))
        }
        None if entry == "main" => module.to_string(),
        None => format!("{module} {entry}"),
    }
}
