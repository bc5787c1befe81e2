//! `shakeshake bench ops`: every operation of Shake-Shake 26 2x32d at batch 128, timed on
//! the chosen adapter (GPU timestamps where the adapter has them).

use crate::cpu::batch_norm::BnShape;
use crate::cpu::sgd::SgdSettings;
use crate::cpu::shake::{BackwardMode, ForwardMode, Level};
use crate::gpu::{Dispatch, Gpu};
use crate::layout::Conv2dShape;
use crate::ops::conv2d::{Conv2d, ConvPass, ConvVariant};
use crate::ops::variants::VariantChooser;
use crate::ops::{StepUniform, batch_norm, cross_entropy, linear, pool, prepare_batch, relu, sgd, shake};
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
}

/// The distinct convolutions of Shake-Shake 26 2x32d (widths 32, 64, 128) at `batch`.
pub fn shake_shake_convs(batch: usize) -> Vec<(&'static str, Conv2dShape)> {
    let c = |cin, side, cout, k, stride, pad| Conv2dShape::new(batch, cin, side, side, cout, k, stride, pad);
    vec![
        ("stem 3x3 3->16 @32", c(3, 32, 16, 3, 1, 1)),
        ("3x3 16->32 @32", c(16, 32, 32, 3, 1, 1)),
        ("3x3 32->32 @32", c(32, 32, 32, 3, 1, 1)),
        ("3x3 32->64 s2 @32", c(32, 32, 64, 3, 2, 1)),
        ("3x3 64->64 @16", c(64, 16, 64, 3, 1, 1)),
        ("3x3 64->128 s2 @16", c(64, 16, 128, 3, 2, 1)),
        ("3x3 128->128 @8", c(128, 8, 128, 3, 1, 1)),
        ("shortcut 1x1 16->16 @32", c(16, 32, 16, 1, 1, 0)),
        ("shortcut 1x1 32->32 s2 @32", c(32, 32, 32, 1, 2, 0)),
        ("shortcut 1x1 64->64 s2 @16", c(64, 16, 64, 1, 2, 0)),
    ]
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
    all_variants: bool,
    filter: &Filter,
    mut report: impl FnMut(OpFigure),
) {
    let mut chooser = VariantChooser::for_adapter(gpu);
    for (name, shape) in shake_shake_convs(batch) {
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
                    shape: name.into(),
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
    let bb = batch_norm::BnBuffers {
        saved: (&small[0]).into(),
        running: (&small[1]).into(),
        gamma_beta: (&small[2]).into(),
    };
    let ms = timed(gpu, &bn.forward_train(gpu, a.into(), bb, b.into()));
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

    let fc = linear::Linear { batch, inputs: pc, outputs: 10 };
    let shape = format!("{batch}x{pc}->10");
    let ms = timed(gpu, &[fc.forward(gpu, a.into(), b.into(), d.into())]);
    report(memory_figure(
        "linear",
        "forward",
        shape.clone(),
        ms,
        4 * (batch * pc + fc.param_len() + batch * 10),
    ));
    let ms = timed(gpu, &fc.backward(gpu, a.into(), b.into(), d.into(), e.into(), (&small[3]).into()));
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

    let mean = [125.3, 123.0, 113.9];
    let std = [63.0, 62.1, 66.7];
    let prep = prepare_batch::Prepare { batch, mean, std, augment: true };
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
