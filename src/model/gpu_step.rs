//! The GPU training (or evaluation) step: a graph turned once into pipelines, buffers and
//! bind groups (`StepGraph`) whose dispatches are recorded into one compute pass every
//! step. Per step the CPU writes only the batch's bytes and labels and the step uniform.

use super::gpu_params::GpuParams;
use super::graph::{BackwardOp, BnOutput, BranchEnd, ForwardOp, Graph, Mode, Node, SavedStatsId, TensorId};
use super::memory::{StepSizes, saved_offsets};
use super::plan::BufferPlan;
use crate::gpu::{CompileError, Dispatch, Gpu, Slice};
use crate::ops::batch_norm::{BatchNorm, BnBuffers};
use crate::ops::conv2d::Conv2d;
use crate::ops::sgd::SgdBuffers;
use crate::ops::{StepUniform, cross_entropy, linear, loss_scale, pool, prepare_batch, relu, sgd, shake};
use crate::shapes::{Conv2dShape, LossScaling, Normalization, Precision, SgdSettings};
use crate::tuning::VariantChooser;
use anyhow::Context;
use std::collections::HashMap;

/// One graph made ready to run: every pipeline, buffer and bind group created.
pub struct StepGraph {
    pub batch: usize,
    /// The step's whole batch, of which this graph runs `batch` images (the same, on one
    /// device; see `BatchShare`).
    pub whole_batch: usize,
    mode: Mode,
    dispatches: Vec<Dispatch>,
    /// Where the update (SGD and the step's count) starts in `dispatches`: what comes before
    /// leaves the step's gradients, which several devices sum before they update.
    update_from: usize,
    /// The ranges of `dispatches` each submitted as a command buffer of its own (see
    /// `command_buffers`).
    command_buffers: Vec<std::ops::Range<usize>>,
    pixels: wgpu::Buffer,
    labels: wgpu::Buffer,
    /// Buffers the activations live in (see `plan`).
    activations: Vec<wgpu::Buffer>,
    logits: (usize, u64),
    /// Batch-norm statistics saved for the backward pass, convolution scratch, and batch
    /// norm's partial reductions (see `StepSizes`).
    scratch: Vec<wgpu::Buffer>,
}

/// Test hook: `SHAKESHAKE_DROP_STEP=<step>` submits that training step without its
/// dispatches, as a driver that stops a long command buffer and reports it completed (macOS
/// does, wgpu issue 9545): the step counter must notice.
fn dropped_step() -> Option<u32> {
    static DROPPED: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *DROPPED.get_or_init(|| std::env::var("SHAKESHAKE_DROP_STEP").ok().and_then(|s| s.parse().ok()))
}

impl StepGraph {
    /// `share`: a graph of the same model (for another batch size) whose activation buffers
    /// this one may use too, when they are large enough; the two must not run at once.
    pub fn new(
        gpu: &Gpu,
        graph: &Graph,
        params: &GpuParams,
        norm: &Normalization,
        sgd_settings: &SgdSettings,
        chooser: &mut VariantChooser,
        share: Option<&StepGraph>,
    ) -> anyhow::Result<StepGraph> {
        // One Conv2d (variants chosen) per distinct shape, before anything is allocated.
        let mut convs: HashMap<Conv2dShape, Conv2d> = HashMap::new();
        crate::tuning::conv2d::compile_ahead(gpu, &graph.conv_shapes(), chooser, &|_, _| {});
        for node in &graph.nodes {
            if let Node::Forward(ForwardOp::Conv { shape, .. }) = node
                && !convs.contains_key(shape)
            {
                let mut conv = crate::tuning::conv2d::pick(gpu, *shape, chooser)?;
                if let Some(budget) = gpu.dispatch_budget_ms {
                    conv = crate::tuning::conv2d::within_budget(gpu, conv, budget, chooser)?;
                }
                convs.insert(*shape, conv);
            }
        }
        let plan = BufferPlan::new(graph);
        // Every size from the one function the memory estimate uses too.
        let conv_scratch = convs.values().map(Conv2d::scratch_floats).max().unwrap_or(0);
        let sizes = StepSizes::of(graph, Some(conv_scratch), gpu.info.device_type != wgpu::DeviceType::Cpu);
        // A graph that never runs beside `share` (an epoch's last, smaller batch) uses its
        // buffers wherever they are large enough.
        let shared = |of: fn(&StepGraph) -> &[wgpu::Buffer], floats: &[usize], label: &str| match share
            .map(of)
        {
            Some(b)
                if b.len() == floats.len()
                    && b.iter().zip(floats).all(|(b, f)| b.size() >= (*f * 4) as u64) =>
            {
                b.to_vec()
            }
            _ => floats.iter().enumerate().map(|(i, f)| gpu.storage(&format!("{label} {i}"), *f)).collect(),
        };
        let buffers = shared(|s| &s.activations, &sizes.activation_words, "activations");
        let scratch_floats = [sizes.saved_floats, sizes.conv_scratch_floats, sizes.bn_partials_floats];
        let scratch_buffers = shared(|s| &s.scratch, &scratch_floats, "scratch");
        let [saved, scratch, bn_partials] = [0, 1, 2].map(|i| scratch_buffers[i].clone());
        let pixels = gpu.storage("pixels", sizes.pixel_words);
        let labels = gpu.storage("labels", sizes.labels);
        let saved_offsets: Vec<usize> = saved_offsets(graph).into_iter().map(|(_, start)| start).collect();
        // A device out of memory has given buffers of no use: stop before binding them.
        gpu.check_alive()?;

        let recorder = Recorder {
            gpu,
            graph,
            params,
            plan: &plan,
            activations: &buffers,
            saved: &saved,
            saved_offsets: &saved_offsets,
            bn_partials: &bn_partials,
            convs: &convs,
            scratch: &scratch,
            pixels: &pixels,
            labels: &labels,
            norm,
        };
        let record = || -> Result<(Vec<Dispatch>, usize), CompileError> {
            let mut dispatches = vec![];
            for node in &graph.nodes {
                dispatches.extend(match node {
                    Node::Forward(op) => recorder.forward(op)?,
                    Node::Backward(op) => recorder.backward(op)?,
                });
            }
            let update_from = dispatches.len();
            if graph.mode == Mode::Train {
                let b = SgdBuffers {
                    weights: (&params.weights).into(),
                    grads: (&params.grads).into(),
                    velocity: (&params.velocity).into(),
                    loss_scale: (&params.loss_scale).into(),
                };
                let len = params.trainable_floats;
                // f16 activations: the gradients are scaled; SGD skips a step that overflowed.
                let scaled = graph.precision == Precision::F16;
                if scaled {
                    dispatches.extend(loss_scale::find_overflow(gpu, len, b.grads, b.loss_scale)?);
                }
                dispatches.extend(sgd::step(gpu, sgd_settings, len, (&params.step).into(), b)?);
                if scaled {
                    dispatches.push(loss_scale::update(gpu, &LossScaling::PYTORCH, b.loss_scale)?);
                }
            }
            // Last: the step ran to its end (see `cross_entropy::count_step`).
            dispatches.push(cross_entropy::count_step(gpu, (&params.metrics).into())?);
            Ok((dispatches, update_from))
        };
        // Convolutions have other variants (the chooser skips one that does not compile);
        // the other kernels are the only ones of their op.
        let (dispatches, update_from) = record().with_context(|| {
            format!(
                "{} cannot run a kernel the network needs. Run `shakeshake selftest` and include its \
                 output in a bug report; `shakeshake adapters` lists other adapters to try with --adapter",
                gpu.describe()
            )
        })?;
        let logits = (plan.buffer_of[graph.logits], graph.tensor_bytes(graph.logits) as u64);
        Ok(StepGraph {
            batch: graph.batch,
            whole_batch: graph.share.whole_batch,
            mode: graph.mode,
            command_buffers: command_buffers(&dispatches, gpu.dispatch_budget_ms),
            dispatches,
            update_from,
            pixels,
            labels,
            activations: buffers,
            logits,
            scratch: scratch_buffers,
        })
    }

    /// Write a batch and the step uniform, record every dispatch, submit. Returns at once.
    pub fn submit(
        &self,
        gpu: &Gpu,
        params: &GpuParams,
        pixels: &[u8],
        labels: &[u32],
        step: StepUniform,
    ) -> wgpu::SubmissionIndex {
        self.submit_then(gpu, params, pixels, labels, step, |_| {})
    }

    /// As `submit`, with `after` recording more commands (a copy of the metrics, say) into
    /// the same submission.
    pub fn submit_then(
        &self,
        gpu: &Gpu,
        params: &GpuParams,
        pixels: &[u8],
        labels: &[u32],
        step: StepUniform,
        after: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> wgpu::SubmissionIndex {
        self.write_inputs(gpu, params, pixels, labels, step);
        self.submit_part(gpu, 0..self.dispatches.len(), step, after)
    }

    /// The first part of a training step, as `submit_then`: the forward and backward passes,
    /// which leave the step's gradients in `params.grads` (to be summed across devices),
    /// then `after`. `submit_update` ends the step.
    pub fn submit_gradients(
        &self,
        gpu: &Gpu,
        params: &GpuParams,
        pixels: &[u8],
        labels: &[u32],
        step: StepUniform,
        after: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> wgpu::SubmissionIndex {
        self.write_inputs(gpu, params, pixels, labels, step);
        self.submit_part(gpu, 0..self.update_from, step, after)
    }

    /// The rest of the step `submit_gradients` began, from the gradients in `params.grads`:
    /// SGD and the step's count, then `after`.
    pub fn submit_update(
        &self,
        gpu: &Gpu,
        step: StepUniform,
        after: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> wgpu::SubmissionIndex {
        self.submit_part(gpu, self.update_from..self.dispatches.len(), step, after)
    }

    fn write_inputs(&self, gpu: &Gpu, params: &GpuParams, pixels: &[u8], labels: &[u32], step: StepUniform) {
        assert_eq!(labels.len(), self.batch, "batch size");
        gpu.queue.write_buffer(&self.pixels, 0, pixels);
        gpu.queue.write_buffer(&self.labels, 0, bytemuck::cast_slice(labels));
        gpu.queue.write_buffer(&params.step, 0, bytemuck::bytes_of(&step));
    }

    /// Record `part` of the dispatches, in the command buffers they belong to, and `after`
    /// in the last; submit.
    fn submit_part(
        &self,
        gpu: &Gpu,
        part: std::ops::Range<usize>,
        step: StepUniform,
        after: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> wgpu::SubmissionIndex {
        let dropped = self.mode == Mode::Train && dropped_step() == Some(step.step);
        let mut encoders: Vec<wgpu::CommandEncoder> = self
            .command_buffers
            .iter()
            .map(|range| range.start.max(part.start)..range.end.min(part.end))
            .filter(|range| !range.is_empty())
            .map(|range| {
                let mut encoder = gpu.device.create_command_encoder(&Default::default());
                if !dropped {
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    for d in &self.dispatches[range] {
                        d.record(&mut pass);
                    }
                }
                encoder
            })
            .collect();
        if encoders.is_empty() {
            encoders.push(gpu.device.create_command_encoder(&Default::default()));
        }
        after(encoders.last_mut().expect("a step has a command buffer"));
        gpu.queue.submit(encoders.into_iter().map(wgpu::CommandEncoder::finish))
    }

    /// The dispatch of the step expected to run longest (none: none was measured; see
    /// `Gpu::dispatch_budget_ms`).
    pub fn longest_expected(&self) -> Option<&Dispatch> {
        self.dispatches
            .iter()
            .filter(|d| d.estimated_ms > 0.0)
            .max_by(|a, b| a.estimated_ms.total_cmp(&b.estimated_ms))
    }

    /// Command buffers a step is submitted in.
    pub fn command_buffer_count(&self) -> usize {
        self.command_buffers.len()
    }

    /// The logits of the last submitted batch (waits for it).
    pub fn read_logits(&self, gpu: &Gpu) -> Result<Vec<f32>, crate::gpu::DeviceLost> {
        let (buffer, bytes) = self.logits;
        let all: Vec<f32> = gpu.try_read(&self.activations[buffer])?;
        Ok(all[..bytes as usize / 4].to_vec())
    }

    pub fn dispatches(&self) -> &[Dispatch] {
        &self.dispatches
    }
}

/// Dispatch budgets one command buffer of a step holds at most: a driver may stop a long
/// command buffer as a whole (macOS does), so a long step goes in several.
const BUDGETS_A_COMMAND_BUFFER: f64 = 5.0;

/// `dispatches` cut, in order, into command buffers each expected to run at most
/// `BUDGETS_A_COMMAND_BUFFER` times the device's dispatch budget (one, without a budget).
fn command_buffers(dispatches: &[Dispatch], budget_ms: Option<f64>) -> Vec<std::ops::Range<usize>> {
    let Some(limit) = budget_ms.map(|ms| ms * BUDGETS_A_COMMAND_BUFFER) else {
        return std::iter::once(0..dispatches.len()).collect();
    };
    let (mut ranges, mut start, mut ms) = (vec![], 0, 0.0);
    for (i, d) in dispatches.iter().enumerate() {
        if i > start && ms + d.estimated_ms > limit {
            ranges.push(start..i);
            (start, ms) = (i, 0.0);
        }
        ms += d.estimated_ms;
    }
    ranges.push(start..dispatches.len());
    ranges
}

/// Everything a graph's dispatches bind, while they are made.
struct Recorder<'a> {
    gpu: &'a Gpu,
    graph: &'a Graph,
    params: &'a GpuParams,
    plan: &'a BufferPlan,
    activations: &'a [wgpu::Buffer],
    saved: &'a wgpu::Buffer,
    saved_offsets: &'a Vec<usize>,
    bn_partials: &'a wgpu::Buffer,
    convs: &'a HashMap<Conv2dShape, Conv2d>,
    scratch: &'a wgpu::Buffer,
    pixels: &'a wgpu::Buffer,
    labels: &'a wgpu::Buffer,
    norm: &'a Normalization,
}

impl<'a> Recorder<'a> {
    /// Tensor `t`, in the buffer the plan put it in (its words: `Graph::stored_in`).
    fn act(&self, t: TensorId) -> Slice<'a> {
        let words = self.graph.tensor_bytes(t).div_ceil(4);
        Slice::from(&self.activations[self.plan.buffer_of[t]]).floats(0, words as u64)
    }

    /// A batch norm layer's buffers: its saved statistics and its gamma and beta.
    fn bn_buffers(&self, saved: SavedStatsId, affine: super::graph::ParamId) -> BnBuffers<'a> {
        let floats = 2 * self.graph.bn_channels[saved] * self.graph.bn_ghosts();
        let saved = Slice::from(self.saved).floats(self.saved_offsets[saved] as u64, floats as u64);
        BnBuffers { saved, gamma_beta: self.params.param(affine), partials: self.bn_partials.into() }
    }

    /// The mix of `block`, over tensors shaped like `t`.
    fn shake(&self, t: TensorId, block: u32) -> shake::Shake {
        let (forward, backward) = self.graph.shake_modes();
        let [batch, channels, h, w] = self.graph.tensors[t].dims;
        let level = self.graph.config.level;
        let (ghost, first_image) = (self.graph.bn_ghost, self.graph.share.first_image);
        let precision = self.graph.precision;
        let plane = h * w;
        shake::Shake {
            batch,
            channels,
            plane,
            block,
            forward,
            backward,
            level,
            ghost,
            first_image,
            precision,
        }
    }

    /// A branch as the mix reads it: its norm's input, statistics and affine parameters.
    fn branch(&self, end: BranchEnd) -> shake::Branch<'a> {
        let b = self.bn_buffers(end.saved, end.affine);
        shake::Branch { x: self.act(end.x), saved: b.saved, gamma_beta: b.gamma_beta }
    }

    /// Planes (N * C) and plane size (H * W) of `t`.
    fn planes(&self, t: TensorId) -> (usize, usize) {
        let [n, c, h, w] = self.graph.tensors[t].dims;
        (n * c, h * w)
    }

    fn forward(&self, op: &ForwardOp) -> Result<Vec<Dispatch>, CompileError> {
        let (gpu, graph, params) = (self.gpu, self.graph, self.params);
        let step = Slice::from(&params.step);
        Ok(match *op {
            ForwardOp::Prepare { out } => {
                let prep = prepare_batch::Prepare {
                    batch: graph.batch,
                    norm: *self.norm,
                    augment: graph.augment,
                    first_image: graph.share.first_image,
                    precision: graph.precision,
                };
                vec![prep.dispatch(gpu, step, self.pixels.into(), self.act(out))?]
            }
            ForwardOp::Conv { shape, window, x, weight, out } => {
                let conv = &self.convs[&shape];
                let scratch = Some(self.scratch.into());
                conv.forward(gpu, self.act(x), params.param(weight), self.act(out), window, scratch)?
            }
            ForwardOp::BatchNorm { shape, x, affine, running, saved, out, output } => {
                let bn = BatchNorm::for_device(gpu, shape);
                let (b, running) = (self.bn_buffers(saved, affine), params.param(running));
                match (graph.mode, output) {
                    (Mode::Train, BnOutput::Stored) => {
                        bn.forward_train(gpu, self.act(x), b, running, self.act(out))?
                    }
                    (Mode::Eval, BnOutput::Stored) => {
                        bn.forward_eval(gpu, self.act(x), b, running, self.act(out))?
                    }
                    (Mode::Train, BnOutput::InShake) => bn.statistics_train(gpu, self.act(x), b, running)?,
                    (Mode::Eval, BnOutput::InShake) => vec![bn.statistics_eval(gpu, b, running)?],
                }
            }
            ForwardOp::Relu { x, out } => {
                vec![relu::forward(gpu, graph.precision, graph.tensor_len(x), self.act(x), self.act(out))?]
            }
            ForwardOp::Shake { block, branches: [a, b], shortcut, out } => {
                let mix = self.shake(out, block);
                let (a, b) = (self.branch(a), self.branch(b));
                vec![mix.forward(gpu, step, a, b, self.act(shortcut), self.act(out))?]
            }
            ForwardOp::Pool { x, out } => {
                let (planes, plane) = self.planes(x);
                vec![pool::forward(gpu, graph.precision, planes, plane, self.act(x), self.act(out))?]
            }
            ForwardOp::Linear { shape, x, param, out } => {
                vec![linear::forward(gpu, &shape, self.act(x), params.param(param), self.act(out))?]
            }
            ForwardOp::Loss { logits } => {
                let classes = graph.tensors[logits].dims[1];
                let (labels, metrics) = (self.labels.into(), (&params.metrics).into());
                vec![cross_entropy::forward(gpu, graph.batch, classes, self.act(logits), labels, metrics)?]
            }
        })
    }

    fn backward(&self, op: &BackwardOp) -> Result<Vec<Dispatch>, CompileError> {
        let (gpu, graph, params) = (self.gpu, self.graph, self.params);
        let step = Slice::from(&params.step);
        Ok(match *op {
            BackwardOp::Loss { logits, dlogits } => {
                let classes = graph.tensors[logits].dims[1];
                let (logits, dlogits) = (self.act(logits), self.act(dlogits));
                let (batch, share, labels) = (graph.batch, graph.share, self.labels.into());
                let scale = (&params.loss_scale).into();
                vec![cross_entropy::backward(gpu, batch, share, classes, logits, labels, dlogits, scale)?]
            }
            BackwardOp::Linear { shape, x, param, dy, dx } => {
                let (w, grad) = (params.param(param), params.grad(param));
                linear::backward(gpu, &shape, self.act(x), w, self.act(dy), self.act(dx), grad)?
            }
            BackwardOp::Pool { dy, dx } => {
                let (planes, plane) = self.planes(dx);
                vec![pool::backward(gpu, graph.precision, planes, plane, self.act(dy), self.act(dx))?]
            }
            BackwardOp::Shake { block, dy, da, db, dshortcut } => {
                let mix = self.shake(dy, block);
                vec![mix.backward(
                    gpu,
                    step,
                    self.act(dy),
                    self.act(da),
                    self.act(db),
                    self.act(dshortcut),
                )?]
            }
            BackwardOp::Relu { x, dy, dx, accumulate } => {
                let len = graph.tensor_len(x);
                let (x, dy, dx) = (self.act(x), self.act(dy), self.act(dx));
                vec![relu::backward(gpu, graph.precision, len, x, dy, dx, accumulate)?]
            }
            BackwardOp::BatchNorm { shape, x, affine, saved, dy, dx } => {
                let b = self.bn_buffers(saved, affine);
                BatchNorm::for_device(gpu, shape).backward(
                    gpu,
                    self.act(x),
                    b,
                    self.act(dy),
                    params.grad(affine),
                    self.act(dx),
                )?
            }
            BackwardOp::ConvWeight { shape, window, x, dy, weight } => {
                let (x, dy, dw) = (self.act(x), self.act(dy), params.grad(weight));
                self.convs[&shape].grad_weight(gpu, x, dy, dw, window, Some(self.scratch.into()))?
            }
            BackwardOp::ConvInput { shape, window, dy, weight, dx, accumulate } => {
                let (dy, w, dx) = (self.act(dy), params.param(weight), self.act(dx));
                self.convs[&shape].grad_input(
                    gpu,
                    dy,
                    w,
                    dx,
                    window,
                    accumulate,
                    Some(self.scratch.into()),
                )?
            }
        })
    }
}
