//! `shakeshake bench ops`: every operation of Shake-Shake 26 2x32d at batch 128, timed on
//! the chosen adapter (GPU timestamps where the adapter has them).

use crate::gpu::{Dispatch, Gpu};
use crate::model::gpu_params::GpuParams;
use crate::model::gpu_step::StepGraph;
use crate::model::{Graph, Mode, ModelConfig, ParamStore};
use crate::ops::conv2d::{Conv2d, ConvPass, ConvVariant};
use crate::ops::variants::VariantChooser;
use crate::ops::{StepUniform, batch_norm, cross_entropy, linear, pool, prepare_batch, relu, sgd, shake};
use crate::shapes::{
    BackwardMode, BnShape, Conv2dShape, ForwardMode, Level, LinearShape, Normalization, SgdSettings,
};
use serde::Serialize;
use std::time::Instant;

/// One measured figure. `gflops` for compute-bound ops, `gbps` for memory-bound ones.
#[derive(Serialize, Debug)]
pub struct OpFigure {
    pub op: String,
    pub pass: String,
    pub shape: String,
    pub variant: String,
    pub ms: f64,
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
}

/// The distinct convolutions of a Shake-Shake of width `k` (26 2x32d: k = 32) at `batch`.
pub fn shake_shake_convs(batch: usize, k: usize) -> Vec<(String, Conv2dShape)> {
    let c = |cin, side, cout, ks, stride| {
        let shape = Conv2dShape::new(batch, cin, side, side, cout, ks, stride, ks / 2);
        let s = if stride > 1 { format!(" s{stride}") } else { String::new() };
        (format!("{ks}x{ks} {cin}->{cout}{s} @{side}"), shape)
    };
    let mut convs = vec![c(3, 32, 16, 3, 1), c(16, 32, k, 3, 1)];
    if k != 16 {
        convs.push(c(k, 32, k, 3, 1));
    }
    convs.extend([
        c(k, 32, 2 * k, 3, 2),
        c(2 * k, 16, 2 * k, 3, 1),
        c(2 * k, 16, 4 * k, 3, 2),
        c(4 * k, 8, 4 * k, 3, 1),
        c(16, 32, k / 2, 1, 1),
        c(k, 32, k, 1, 2),
        c(2 * k, 16, 2 * k, 1, 2),
    ]);
    if k == 16 {
        convs.retain(|(name, _)| name != "1x1 16->8 @32");
    }
    convs
}

const REPS: usize = 5;

/// Keeps the figures whose "op pass shape" contains the text (all when it is empty).
pub struct Filter(pub String);

impl Filter {
    pub fn keeps(&self, op: &str, pass: &str, shape: &str) -> bool {
        format!("{op} {pass} {shape}").contains(&self.0)
    }
}

fn timed(gpu: &Gpu, dispatches: &[Dispatch]) -> f64 {
    gpu.time_ms(&dispatches.iter().collect::<Vec<_>>(), REPS)
}

/// Convolution figures: the chosen variant of each pass, or every supported one.
pub fn conv_figures(
    gpu: &Gpu,
    batch: usize,
    width: usize,
    all_variants: bool,
    filter: &Filter,
    mut report: impl FnMut(OpFigure),
) {
    let mut chooser = VariantChooser::for_adapter(gpu);
    for (name, shape) in shake_shake_convs(batch, width) {
        let name = name.as_str();
        if !ConvPass::ALL.iter().any(|pass| filter.keeps("conv2d", pass.name(), name)) {
            continue;
        }
        let chosen = Conv2d::new(gpu, shape, &mut chooser);
        for pass in ConvPass::ALL.into_iter().filter(|pass| filter.keeps("conv2d", pass.name(), name)) {
            let variants: Vec<ConvVariant> = if all_variants {
                ConvVariant::ALL.into_iter().filter(|v| v.supports(gpu, pass, &shape)).collect()
            } else {
                vec![chosen.variants[pass as usize]]
            };
            for v in variants {
                let ms = Conv2d::with_variants(shape, [v; 3]).time_pass(gpu, pass, REPS, f64::INFINITY);
                report(OpFigure {
                    op: "conv2d".into(),
                    pass: pass.name().into(),
                    shape: name.to_string(),
                    variant: v.name().into(),
                    ms,
                    gflops: Some(shape.flops() / ms / 1e6),
                    gbps: None,
                });
            }
        }
    }
}

fn memory_figure(op: &str, pass: &str, shape: String, ms: f64, bytes: usize) -> OpFigure {
    OpFigure {
        op: op.into(),
        pass: pass.into(),
        shape,
        variant: "-".into(),
        ms,
        gflops: None,
        gbps: Some(bytes as f64 / ms / 1e6),
    }
}

/// Every other op, at the sizes of the network's first stage and head.
pub fn other_figures(gpu: &Gpu, batch: usize, filter: &Filter, mut report: impl FnMut(OpFigure)) {
    let mut report = |f: OpFigure| {
        if filter.keeps(&f.op, &f.pass, &f.shape) {
            report(f)
        }
    };
    let (c, side) = (32, 32);
    let len = batch * c * side * side;
    let act = format!("{batch}x{c}x{side}x{side}");
    let bufs: Vec<wgpu::Buffer> = (0..4).map(|i| gpu.storage(&format!("bench {i}"), len)).collect();
    let [a, b, d, e] = [&bufs[0], &bufs[1], &bufs[2], &bufs[3]];
    let step = gpu.uniform("step", &StepUniform { step: 1, seed: 1, lr: 0.1, _pad: 0 });

    let ms = timed(gpu, &[relu::forward(gpu, len, a.into(), b.into())]);
    report(memory_figure("relu", "forward", act.clone(), ms, 2 * 4 * len));
    let ms = timed(gpu, &[relu::backward(gpu, len, a.into(), b.into(), d.into(), false)]);
    report(memory_figure("relu", "backward", act.clone(), ms, 3 * 4 * len));

    let bn = batch_norm::BatchNorm::new(BnShape::new(batch, c, side * side, true));
    let small: Vec<wgpu::Buffer> = (0..4).map(|_| gpu.storage("bn", 2 * c)).collect();
    let bb = batch_norm::BnBuffers { saved: (&small[0]).into(), gamma_beta: (&small[2]).into() };
    let ms = timed(gpu, &bn.forward_train(gpu, a.into(), bb, (&small[1]).into(), b.into()));
    report(memory_figure("batch_norm", "forward", act.clone(), ms, 4 * 4 * len));
    let ms = timed(gpu, &bn.backward(gpu, a.into(), bb, b.into(), (&small[3]).into(), d.into()));
    report(memory_figure("batch_norm", "backward", act.clone(), ms, 5 * 4 * len));

    let mix = shake::Shake {
        batch,
        image_len: c * side * side,
        block: 0,
        forward: ForwardMode::Shake,
        backward: BackwardMode::Shake,
        level: Level::Image,
    };
    let ms = timed(gpu, &[mix.forward(gpu, (&step).into(), a.into(), b.into(), d.into(), e.into())]);
    report(memory_figure("shake", "forward", act.clone(), ms, 4 * 4 * len));
    let ms = timed(gpu, &[mix.backward(gpu, (&step).into(), a.into(), b.into(), d.into(), e.into())]);
    report(memory_figure("shake", "backward", act.clone(), ms, 4 * 4 * len));

    let (pc, pside) = (128, 8);
    let planes = batch * pc;
    let shape = format!("{batch}x{pc}x{pside}x{pside}");
    let ms = timed(gpu, &[pool::forward(gpu, planes, pside * pside, a.into(), b.into())]);
    report(memory_figure("avg_pool", "forward", shape.clone(), ms, 4 * planes * (pside * pside + 1)));
    let ms = timed(gpu, &[pool::backward(gpu, planes, pside * pside, a.into(), b.into())]);
    report(memory_figure("avg_pool", "backward", shape, ms, 4 * planes * (pside * pside + 1)));

    let fc = LinearShape { batch, inputs: pc, outputs: 10 };
    let shape = format!("{batch}x{pc}->10");
    let ms = timed(gpu, &[linear::forward(gpu, &fc, a.into(), b.into(), d.into())]);
    report(memory_figure(
        "linear",
        "forward",
        shape.clone(),
        ms,
        4 * (batch * pc + fc.param_len() + batch * 10),
    ));
    let ms =
        timed(gpu, &linear::backward(gpu, &fc, a.into(), b.into(), d.into(), e.into(), (&small[3]).into()));
    report(memory_figure(
        "linear",
        "backward",
        shape,
        ms,
        4 * (2 * batch * pc + 2 * fc.param_len() + batch * 10),
    ));

    let labels = gpu.storage_from("labels", &vec![3u32; batch]);
    let metrics = gpu.storage("metrics", cross_entropy::METRICS_LEN);
    let shape = format!("{batch}x10");
    let ms =
        timed(gpu, &[cross_entropy::forward(gpu, batch, 10, a.into(), (&labels).into(), (&metrics).into())]);
    report(memory_figure("cross_entropy", "forward", shape.clone(), ms, 4 * batch * 11));
    let ms = timed(gpu, &[cross_entropy::backward(gpu, batch, 10, a.into(), (&labels).into(), b.into())]);
    report(memory_figure("cross_entropy", "backward", shape, ms, 4 * batch * 21));

    // Shake-Shake 26 2x32d has 2.9 million parameters.
    let params = 2_900_000.min(len);
    let settings = SgdSettings { momentum: 0.9, weight_decay: 1e-4, nesterov: true };
    let ms = timed(gpu, &[sgd::step(gpu, &settings, params, (&step).into(), a.into(), b.into(), d.into())]);
    report(memory_figure("sgd", "update", format!("{params} params"), ms, 5 * 4 * params));

    let prep = prepare_batch::Prepare { batch, norm: Normalization::CIFAR10, augment: true };
    let ms = timed(gpu, &[prep.dispatch(gpu, (&step).into(), a.into(), b.into())]);
    report(memory_figure("prepare_batch", "forward", format!("{batch}x3x32x32"), ms, 5 * 3072 * batch));
}

/// A human-readable row.
pub fn format_figure(f: &OpFigure) -> String {
    let rate = match (f.gflops, f.gbps) {
        (Some(g), _) => format!("{g:8.2} GFLOP/s"),
        (_, Some(b)) => format!("{b:8.2} GB/s"),
        _ => String::new(),
    };
    format!("{:<14} {:<12} {:<28} {:<18} {:>9.3} ms {}", f.op, f.pass, f.shape, f.variant, f.ms, rate)
}

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
    pub adapter: String,
    /// (operation kind, milliseconds a step, share of GPU time), largest first.
    pub gpu_time: Vec<(String, f64, f64)>,
}

/// Time `steps` training steps after `warm_up` steps (the first compiles every pipeline).
pub fn train_figure(
    gpu: &Gpu,
    config: ModelConfig,
    batch: usize,
    warm_up: usize,
    steps: usize,
) -> TrainFigure {
    let graph = Graph::build(config, batch, Mode::Train);
    let params = GpuParams::upload(gpu, &ParamStore::init(&graph.params, 0), None);
    let settings = SgdSettings { momentum: 0.9, weight_decay: 1e-4, nesterov: true };
    let mut chooser = VariantChooser::for_adapter(gpu);
    let step_graph =
        StepGraph::new(gpu, &graph, &params, &Normalization::CIFAR10, &settings, &mut chooser, None);
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
    let mut by_kind: Vec<(String, f64, f64)> = vec![];
    if let Some(times) = gpu.profile(&dispatches) {
        let total: f64 = times.iter().sum();
        for (d, ms) in dispatches.iter().zip(times) {
            let kind = operation_kind(&d.label);
            match by_kind.iter_mut().find(|(k, _, _)| *k == kind) {
                Some(entry) => entry.1 += ms,
                None => by_kind.push((kind, ms, 0.0)),
            }
        }
        by_kind.iter_mut().for_each(|e| e.2 = e.1 / total);
        by_kind.sort_by(|a, b| b.1.total_cmp(&a.1));
    }
    TrainFigure {
        images_per_second: batch as f64 / (step_ms / 1e3),
        step_ms,
        depth: config.depth,
        width: config.width,
        batch,
        variant: config.variant_name(),
        dispatches_per_step: dispatches.len(),
        adapter: gpu.describe(),
        gpu_time: by_kind,
    }
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
