//! `shakeshake bench ops`: every operation of Shake-Shake timed alone on the chosen adapter
//! (GPU timestamps where the adapter has them), at the shapes `Graph::build` gives the
//! network of the requested width: every distinct convolution, and the other operations at
//! the size of their largest layer, with the activations in the requested precision (the
//! bytes of a memory-bound figure count each activation at its size).

use crate::gpu::{DeviceLost, Dispatch, Gpu, GpuError};
use crate::model::graph::{ForwardOp, Node};
use crate::model::{Graph, Mode, ModelConfig};
use crate::ops::conv2d::{Conv2d, ConvPass, ConvVariant};
use crate::ops::{
    StepUniform, batch_norm, cross_entropy, linear, loss_scale, pool, prepare_batch, relu, sgd, shake,
};
use crate::shapes::{
    BatchShare, BnShape, CLASSES, IMAGE_BYTES, LossScale, Normalization, Precision, SgdSettings,
};
use crate::tuning::VariantChooser;
use serde::Serialize;

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
    /// `gflops` over the device's FP32 peak, when the peak is known.
    pub peak_fraction: Option<f64>,
}

/// FP32 peak GFLOP/s of GPUs whose makers publish it (boost clock, FMA counted as two), by
/// the end of the adapter's name as drivers report it; `--peak-gflops` gives any other.
const KNOWN_PEAKS: &[(&str, f64)] = &[
    ("H100 80GB HBM3", 66_900.0), // H100 SXM
    ("H100 PCIe", 51_200.0),
    ("H200", 66_900.0),
    ("A100-SXM4-40GB", 19_500.0),
    ("A100-SXM4-80GB", 19_500.0),
    ("A100-PCIE-40GB", 19_500.0),
    ("A100 80GB PCIe", 19_500.0),
    ("GeForce RTX 4090", 82_600.0),
    ("GeForce RTX 3090", 35_600.0),
    ("Apple M1", 2_600.0),
    ("Apple M1 Max", 10_400.0),
    ("Apple M2", 3_600.0),
];

/// The FP32 peak of the adapter named `name`, if its name ends with one of `KNOWN_PEAKS`
/// (so "RTX 3090 Ti" and "Apple M1 Pro" are not taken for their smaller siblings).
pub fn known_peak_gflops(name: &str) -> Option<f64> {
    KNOWN_PEAKS.iter().find(|(end, _)| name.trim_end().ends_with(end)).map(|(_, peak)| *peak)
}

const REPS: usize = 5;

/// Keeps the figures whose "op pass shape" contains the text (all when it is empty).
pub struct Filter(pub String);

impl Filter {
    pub fn keeps(&self, op: &str, pass: &str, shape: &str) -> bool {
        format!("{op} {pass} {shape}").contains(&self.0)
    }
}

/// The network whose operations are timed: the paper's depth, the requested width.
fn network(batch: usize, width: usize, precision: Precision) -> anyhow::Result<Graph> {
    Ok(Graph::build(ModelConfig::new(26, width)?, batch, Mode::Train).in_precision(precision))
}

/// What `bench ops` times: the network of `width` at `batch`, its activations in
/// `precision`; every convolution variant, or the chosen one.
pub struct OpsBench {
    pub batch: usize,
    pub width: usize,
    pub precision: Precision,
    pub all_variants: bool,
}

/// Every figure of `bench ops`: convolutions first, then the other operations.
/// `peak_gflops`: the device's FP32 peak, for each figure's fraction of it (else looked up in
/// `KNOWN_PEAKS`).
pub fn op_figures(
    gpu: &Gpu,
    bench: &OpsBench,
    filter: &Filter,
    peak_gflops: Option<f64>,
    mut report: impl FnMut(OpFigure),
) -> anyhow::Result<()> {
    let (all_variants, graph) = (bench.all_variants, network(bench.batch, bench.width, bench.precision)?);
    let peak = peak_gflops.or_else(|| known_peak_gflops(&gpu.info.name));
    let mut report = |mut f: OpFigure| {
        f.peak_fraction = peak.zip(f.gflops).map(|(peak, g)| g / peak);
        report(f)
    };
    conv_figures(gpu, &graph, all_variants, filter, &mut report)?;
    other_figures(gpu, &graph, &mut |f: OpFigure| {
        if filter.keeps(&f.op, &f.pass, &f.shape) {
            report(f)
        }
    })?;
    Ok(())
}

/// The network's distinct convolution shapes, in order of first use.
/// Convolution figures: the chosen variant of each pass, or every supported one.
fn conv_figures(
    gpu: &Gpu,
    graph: &Graph,
    all_variants: bool,
    filter: &Filter,
    report: &mut impl FnMut(OpFigure),
) -> anyhow::Result<()> {
    let mut chooser = VariantChooser::for_adapter(gpu);
    for shape in graph.conv_shapes() {
        let name = shape.name();
        let passes: Vec<ConvPass> =
            ConvPass::ALL.into_iter().filter(|pass| filter.keeps("conv2d", pass.name(), &name)).collect();
        if passes.is_empty() {
            continue;
        }
        let chosen = crate::tuning::conv2d::pick(gpu, shape, &mut chooser)?;
        for pass in passes {
            let variants: Vec<ConvVariant> = if all_variants {
                ConvVariant::ALL.into_iter().filter(|v| v.supports(gpu, pass, &shape)).collect()
            } else {
                vec![chosen.variants[pass as usize]]
            };
            for v in variants {
                let ms = Conv2d::with_variants(shape, [v; 3]).time_pass(gpu, pass, REPS)?;
                report(OpFigure {
                    op: "conv2d".into(),
                    pass: pass.name().into(),
                    shape: name.clone(),
                    variant: v.name().into(),
                    ms,
                    gflops: Some(shape.flops() / ms / 1e6),
                    peak_fraction: None,
                    gbps: None,
                });
            }
        }
    }
    Ok(())
}

fn timed(gpu: &Gpu, dispatches: &[Dispatch]) -> Result<f64, DeviceLost> {
    gpu.time_ms(&dispatches.iter().collect::<Vec<_>>(), REPS)
}

fn memory_figure(op: &str, pass: &str, shape: String, ms: f64, bytes: usize) -> OpFigure {
    OpFigure {
        op: op.into(),
        pass: pass.into(),
        shape,
        variant: "-".into(),
        ms,
        gflops: None,
        peak_fraction: None,
        gbps: Some(bytes as f64 / ms / 1e6),
    }
}

/// The first forward operation of the graph that `pick` accepts.
fn first<T>(graph: &Graph, pick: impl Fn(&ForwardOp) -> Option<T>) -> T {
    graph
        .nodes
        .iter()
        .find_map(|node| match node {
            Node::Forward(op) => pick(op),
            Node::Backward(_) => None,
        })
        .expect("Shake-Shake has every kind of operation")
}

/// Every other op, each at its largest layer: batch norm, ReLU and the shake mix at the
/// first stage's size, pooling and the linear layer at the head, SGD over every parameter.
fn other_figures(gpu: &Gpu, graph: &Graph, report: &mut impl FnMut(OpFigure)) -> Result<(), GpuError> {
    let (batch, precision) = (graph.batch, graph.precision);
    // Bytes of one activation.
    let elem = precision.bytes();
    let bn_shape: BnShape = first(graph, |op| match op {
        ForwardOp::BatchNorm { shape, .. } if shape.relu => Some(*shape),
        _ => None,
    });
    let len = bn_shape.len();
    let side = (bn_shape.plane as f64).sqrt() as usize;
    let f16 = precision.suffix();
    let act = format!("{batch}x{}x{side}x{side}{f16}", bn_shape.channels);
    let params: usize = graph.params.iter().filter(|p| p.trainable()).map(|p| p.len()).sum();
    let bufs: Vec<wgpu::Buffer> =
        (0..4).map(|i| gpu.storage(&format!("bench {i}"), len.max(params))).collect();
    let [a, b, d, e] = [&bufs[0], &bufs[1], &bufs[2], &bufs[3]];
    let step = gpu.uniform("step", &StepUniform { step: 1, seed: 1, lr: 0.1, _pad: 0 });

    let ms = timed(gpu, &[relu::forward(gpu, precision, len, a.into(), b.into())?])?;
    report(memory_figure("relu", "forward", act.clone(), ms, 2 * elem * len));
    let ms = timed(gpu, &[relu::backward(gpu, precision, len, a.into(), b.into(), d.into(), false)?])?;
    report(memory_figure("relu", "backward", act.clone(), ms, 3 * elem * len));

    let bn = batch_norm::BatchNorm::for_device(gpu, bn_shape);
    let saved_floats = batch_norm::BatchNorm::saved_floats(&bn_shape);
    let small: Vec<wgpu::Buffer> = (0..4).map(|_| gpu.storage("bn", saved_floats)).collect();
    let partials = gpu.storage("bn partials", bn.partials_floats());
    let bb = batch_norm::BnBuffers {
        saved: (&small[0]).into(),
        gamma_beta: (&small[2]).into(),
        partials: (&partials).into(),
    };
    let ms = timed(gpu, &bn.forward_train(gpu, a.into(), bb, (&small[1]).into(), b.into())?)?;
    report(memory_figure("batch_norm", "forward", act.clone(), ms, 3 * elem * len));
    let ms = timed(gpu, &bn.backward(gpu, a.into(), bb, b.into(), (&small[3]).into(), d.into())?)?;
    report(memory_figure("batch_norm", "backward", act.clone(), ms, 5 * elem * len));

    let (forward, backward) = graph.shake_modes();
    let level = graph.config.level;
    let (channels, plane) = (bn_shape.channels, bn_shape.plane);
    let (ghost, first_image) = (bn_shape.ghost, 0);
    let mix = shake::Shake {
        batch,
        channels,
        plane,
        block: 0,
        forward,
        backward,
        level,
        ghost,
        first_image,
        precision,
    };
    let [branch_a, branch_b] =
        [a, b].map(|x| shake::Branch { x: x.into(), saved: bb.saved, gamma_beta: bb.gamma_beta });
    let ms = timed(gpu, &[mix.forward(gpu, (&step).into(), branch_a, branch_b, d.into(), e.into())?])?;
    report(memory_figure("shake", "forward", act.clone(), ms, 4 * elem * len));
    let ms = timed(gpu, &[mix.backward(gpu, (&step).into(), a.into(), b.into(), d.into(), e.into())?])?;
    report(memory_figure("shake", "backward", act, ms, 4 * elem * len));

    let pooled = first(graph, |op| match op {
        ForwardOp::Pool { x, .. } => Some(graph.tensors[*x].dims),
        _ => None,
    });
    let [_, pc, pside, _] = pooled;
    let (planes, plane) = (batch * pc, pside * pside);
    let shape = format!("{batch}x{pc}x{pside}x{pside}{f16}");
    let ms = timed(gpu, &[pool::forward(gpu, precision, planes, plane, a.into(), b.into())?])?;
    report(memory_figure("avg_pool", "forward", shape.clone(), ms, planes * (elem * plane + 4)));
    let ms = timed(gpu, &[pool::backward(gpu, precision, planes, plane, a.into(), b.into())?])?;
    report(memory_figure("avg_pool", "backward", shape, ms, planes * (elem * plane + 4)));

    let fc = first(graph, |op| match op {
        ForwardOp::Linear { shape, .. } => Some(*shape),
        _ => None,
    });
    let shape = format!("{batch}x{}->{}", fc.inputs, fc.outputs);
    let ms = timed(gpu, &[linear::forward(gpu, &fc, a.into(), b.into(), d.into())?])?;
    let bytes = 4 * (batch * fc.inputs + fc.param_len() + batch * fc.outputs);
    report(memory_figure("linear", "forward", shape.clone(), ms, bytes));
    let ms =
        timed(gpu, &linear::backward(gpu, &fc, a.into(), b.into(), d.into(), e.into(), (&small[3]).into())?)?;
    let bytes = 4 * (2 * batch * fc.inputs + 2 * fc.param_len() + batch * fc.outputs);
    report(memory_figure("linear", "backward", shape, ms, bytes));

    let labels = gpu.storage_from("labels", &vec![3u32; batch]);
    let metrics = gpu.storage("metrics", cross_entropy::METRICS_LEN);
    let shape = format!("{batch}x{CLASSES}");
    let forward = cross_entropy::forward(gpu, batch, CLASSES, a.into(), (&labels).into(), (&metrics).into())?;
    let ms = timed(gpu, &[forward])?;
    report(memory_figure("cross_entropy", "forward", shape.clone(), ms, 4 * batch * (CLASSES + 1)));
    let whole = BatchShare::whole(batch);
    let state = loss_scale::state_buffer(gpu, LossScale::NONE);
    let (labels, scale) = ((&labels).into(), (&state).into());
    let backward = cross_entropy::backward(gpu, batch, whole, CLASSES, a.into(), labels, b.into(), scale)?;
    let ms = timed(gpu, &[backward])?;
    report(memory_figure("cross_entropy", "backward", shape, ms, 4 * batch * (2 * CLASSES + 1)));

    let buffers =
        sgd::SgdBuffers { weights: a.into(), grads: b.into(), velocity: d.into(), loss_scale: scale };
    let update = sgd::step(gpu, &SgdSettings::PAPER, params, (&step).into(), buffers)?;
    let ms = timed(gpu, &update)?;
    report(memory_figure("sgd", "update", format!("{params} params"), ms, 5 * 4 * params));

    let norm = Normalization::CIFAR10;
    let prep = prepare_batch::Prepare { batch, norm, augment: true, first_image: 0, precision };
    let ms = timed(gpu, &[prep.dispatch(gpu, (&step).into(), a.into(), b.into())?])?;
    let shape = format!("{batch}x3x32x32{f16}");
    report(memory_figure("prepare_batch", "forward", shape, ms, (1 + elem) * IMAGE_BYTES * batch));
    Ok(())
}

/// A human-readable row.
pub fn format_figure(f: &OpFigure) -> String {
    let rate = match (f.gflops, f.gbps) {
        (Some(g), _) => format!("{g:8.2} GFLOP/s"),
        (_, Some(b)) => format!("{b:8.2} GB/s"),
        _ => String::new(),
    };
    let peak = f.peak_fraction.map(|p| format!(" {:5.1}% of peak", 100.0 * p)).unwrap_or_default();
    format!("{:<14} {:<12} {:<28} {:<18} {:>9.3} ms {rate}{peak}", f.op, f.pass, f.shape, f.variant, f.ms)
}

#[cfg(test)]
mod tests {
    use super::known_peak_gflops;

    #[test]
    fn peaks_are_found_by_the_end_of_the_name_only() {
        assert_eq!(known_peak_gflops("NVIDIA H200"), Some(66_900.0));
        assert_eq!(known_peak_gflops("NVIDIA H100 80GB HBM3"), Some(66_900.0));
        assert_eq!(known_peak_gflops("Apple M1 Max"), Some(10_400.0));
        assert_eq!(known_peak_gflops("Apple M1 Pro"), None);
        assert_eq!(known_peak_gflops("NVIDIA GeForce RTX 3090 Ti"), None);
        assert_eq!(known_peak_gflops("llvmpipe (LLVM 15.0.6, 256 bits)"), None);
    }
}
