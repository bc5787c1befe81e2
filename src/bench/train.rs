//! `shakeshake bench train`: steady-state training throughput of a whole step; per
//! operation kind, its dispatches, the bytes they bind and its share of GPU time.

use crate::gpu::{Dispatch, Gpu};
use crate::model::{Graph, Mode, ModelConfig, ParamStore};
use crate::ops::StepUniform;
use crate::shapes::{LossScale, LossScaling, Precision};
use crate::train::ranks::Ranks;
use crate::train::replicas::{Replica, Replicas};
use crate::train::session::Session;
use crate::train::shares::Shares;
use serde::Serialize;
use std::rc::Rc;
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
    /// What the activations were stored in: "f32" or "f16".
    pub precision: &'static str,
    pub dispatches_per_step: usize,
    /// Bytes bound by every dispatch of a step (see `Dispatch::bytes`): the memory traffic
    /// the step cannot do without. This and the dispatches and kinds are device 0's.
    pub bytes_per_step: u64,
    pub adapter: String,
    /// Devices the step ran on, each with its share of the batch (`--adapter 0,1`).
    pub devices: usize,
    /// With several devices: milliseconds a step the gradients' sum costs, measured as the
    /// step time less that of the same devices each running its share's step alone (reading
    /// the gradients back, adding them, writing the sum, and the wait between the passes).
    pub all_reduce_ms: Option<f64>,
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

/// Time `steps` training steps after `warm_up` steps (the first compiles every pipeline),
/// on every device of `gpus`, each with its share of the batch (see `train::replicas`), or
/// with `ranks`, on this process's device as one of an MPI run's; activations in
/// `precision` (f16 with its loss scaling, as a run starts it).
pub fn train_figure(
    gpus: Vec<Gpu>,
    ranks: Option<Rc<dyn Ranks>>,
    config: ModelConfig,
    precision: Precision,
    batch: usize,
    warm_up: usize,
    steps: usize,
) -> anyhow::Result<TrainFigure> {
    let store = ParamStore::init(&Graph::build(config, batch, Mode::Train).params, 0);
    let (first, devices) = ranks.as_ref().map_or((0, gpus.len()), |r| (r.rank(), r.size()));
    let shares = Shares::equal(devices);
    let several = devices > 1;
    let devices = (first..)
        .zip(gpus)
        .map(|(d, gpu)| {
            let mut session = Session::new(gpu, config, &store, None)?;
            session.device_share = several.then(|| (shares.clone(), d));
            session.precision = precision;
            session.params.set_loss_scale(&session.gpu, LossScale::start(precision, &LossScaling::PYTORCH));
            let graphs = session.graphs(Mode::Train, batch, batch)?;
            Ok(Replica::new(session, graphs))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let replicas = Replicas { devices, shares, first_device: first, ranks };
    let pixels: Vec<u8> =
        (0..batch * 3072).map(|i| (crate::random::pcg_hash(i as u32) % 256) as u8).collect();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let uniform = |step: u32| StepUniform { step, seed: 1, lr: 0.01, _pad: 0 };
    let step_ms = timed_steps(&replicas, warm_up, steps, |step| {
        replicas.submit(&pixels, &labels, uniform(step), |_| {})?;
        Ok(())
    })?;
    // The same devices, each its share's whole step, with nothing summed.
    let all_reduce_ms = several
        .then(|| {
            timed_steps(&replicas, warm_up, steps, |step| {
                let shares = replicas.shares.split(batch);
                for (device, share) in replicas.devices.iter().zip(shares.into_iter().skip(first)) {
                    let (s, graph) = (&device.session, device.graphs.for_batch(batch));
                    let bytes = &pixels[share.start * 3072..share.end * 3072];
                    graph.submit(&s.gpu, &s.params, bytes, &labels[share], uniform(step));
                }
                Ok(())
            })
            .map(|apart_ms| step_ms - apart_ms)
        })
        .transpose()?;
    let first = replicas.first();
    let (gpu, step_graph) = (&first.gpu, &replicas.devices[0].graphs.full);
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
        precision: precision.name(),
        dispatches_per_step: dispatches.len(),
        bytes_per_step: dispatches.iter().map(|d| d.bytes).sum(),
        adapter: replicas.describe().join(" + "),
        devices: replicas.shares.devices(),
        all_reduce_ms,
        pipelines: gpu.kernels_made().0,
        kinds,
    })
}

/// Milliseconds a step of `step`, over `steps` steps after `warm_up`, every device waited
/// for at both ends.
fn timed_steps(
    replicas: &Replicas,
    warm_up: usize,
    steps: usize,
    step: impl Fn(u32) -> Result<(), crate::gpu::DeviceLost>,
) -> anyhow::Result<f64> {
    let wait = || replicas.devices.iter().try_for_each(|d| d.session.gpu.try_wait());
    for s in 0..warm_up {
        step(s as u32)?;
    }
    wait()?;
    let start = Instant::now();
    for s in 0..steps {
        step((warm_up + s) as u32)?;
    }
    wait()?;
    Ok(start.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64)
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
