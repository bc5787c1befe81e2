//! The GPU executor: parameters in flat buffers, and a graph turned once into pipelines,
//! buffers and bind groups (`StepGraph`) whose dispatches are recorded into one compute pass
//! every step. Per step the CPU writes only the batch's bytes and labels and the step uniform.

use super::graph::{Graph, Mode, Node, ParamId, TensorId};
use super::params::{ParamSpec, ParamStore};
use super::plan::BufferPlan;
use crate::gpu::{Dispatch, Gpu, Slice};
use crate::ops::batch_norm::{BatchNorm, BnBuffers};
use crate::ops::conv2d::Conv2d;
use crate::ops::variants::VariantChooser;
use crate::ops::{StepUniform, cross_entropy, linear, pool, prepare_batch, relu, sgd, shake};
use crate::shapes::{BackwardMode, Conv2dShape, ForwardMode, IMAGE_BYTES, Normalization, SgdSettings};
use std::collections::HashMap;

/// Parameters, their gradients and momentum, and running statistics, each in one flat buffer
/// (so SGD is one dispatch), shared by every graph of a model.
pub struct GpuParams {
    pub specs: Vec<ParamSpec>,
    /// Where each binding starts, in floats, in `weights` (trainable) or `running`.
    offsets: Vec<usize>,
    pub trainable_floats: usize,
    pub weights: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    pub velocity: wgpu::Buffer,
    pub running: wgpu::Buffer,
    /// The StepUniform every step-dependent kernel reads.
    pub step: wgpu::Buffer,
    /// Loss and accuracy accumulators (see `ops::cross_entropy::METRICS_LEN`).
    pub metrics: wgpu::Buffer,
}

impl GpuParams {
    /// Upload parameters (and momentum, when resuming) in the GPU's layouts.
    pub fn upload(gpu: &Gpu, store: &ParamStore, velocity: Option<&[Vec<f32>]>) -> GpuParams {
        // Bindings start at the device's storage offset alignment.
        let align = (gpu.limits.min_storage_buffer_offset_alignment as usize / 4).max(4);
        let mut offsets = vec![];
        let (mut trainable, mut running) = (0, 0);
        for spec in &store.specs {
            let end = if spec.trainable() { &mut trainable } else { &mut running };
            offsets.push(*end);
            *end = (*end + spec.len()).next_multiple_of(align);
        }
        let flat = |values: &[Vec<f32>], want_trainable: bool, len: usize| {
            let mut v = vec![0.0f32; len];
            for ((spec, host), off) in store.specs.iter().zip(values).zip(&offsets) {
                if spec.trainable() == want_trainable {
                    v[*off..off + spec.len()].copy_from_slice(&spec.to_gpu_layout(host));
                }
            }
            v
        };
        let zeros: Vec<Vec<f32>> = store.specs.iter().map(|s| vec![0.0; s.len()]).collect();
        let weights = gpu.storage_from("weights", &flat(&store.values, true, trainable));
        let velocity = gpu.storage_from("velocity", &flat(velocity.unwrap_or(&zeros), true, trainable));
        let running = gpu.storage_from("running", &flat(&store.values, false, running));
        GpuParams {
            specs: store.specs.clone(),
            offsets,
            trainable_floats: trainable,
            weights,
            grads: gpu.storage("grads", trainable),
            velocity,
            running,
            step: gpu.uniform("step", &StepUniform::default()),
            metrics: gpu.storage("metrics", cross_entropy::METRICS_LEN),
        }
    }

    fn slice_in<'a>(&self, buffer: &'a wgpu::Buffer, p: ParamId) -> Slice<'a> {
        Slice::from(buffer).floats(self.offsets[p] as u64, self.specs[p].len() as u64)
    }

    /// A binding's values: in `weights` if trainable, else in `running`.
    pub fn param(&self, p: ParamId) -> Slice<'_> {
        self.slice_in(if self.specs[p].trainable() { &self.weights } else { &self.running }, p)
    }

    pub fn grad(&self, p: ParamId) -> Slice<'_> {
        self.slice_in(&self.grads, p)
    }

    fn read_per_param(&self, gpu: &Gpu, flat_trainable: &wgpu::Buffer) -> Vec<Vec<f32>> {
        let (w, r): (Vec<f32>, Vec<f32>) = (gpu.read(flat_trainable), gpu.read(&self.running));
        self.specs
            .iter()
            .zip(&self.offsets)
            .map(|(spec, off)| {
                let src = if spec.trainable() { &w } else { &r };
                spec.from_gpu_layout(&src[*off..off + spec.len()])
            })
            .collect()
    }

    /// Parameters and running statistics, host layout.
    pub fn download(&self, gpu: &Gpu) -> ParamStore {
        ParamStore { specs: self.specs.clone(), values: self.read_per_param(gpu, &self.weights) }
    }

    /// Gradients of the last step (zero for running statistics' entries), host layout.
    pub fn download_grads(&self, gpu: &Gpu) -> Vec<Vec<f32>> {
        let mut g = self.read_per_param(gpu, &self.grads);
        for (spec, v) in self.specs.iter().zip(&mut g) {
            if !spec.trainable() {
                v.iter_mut().for_each(|x| *x = 0.0);
            }
        }
        g
    }

    /// Momentum buffers, host layout (zero for running statistics' entries).
    pub fn download_velocity(&self, gpu: &Gpu) -> Vec<Vec<f32>> {
        let mut v = self.read_per_param(gpu, &self.velocity);
        for (spec, x) in self.specs.iter().zip(&mut v) {
            if !spec.trainable() {
                x.iter_mut().for_each(|x| *x = 0.0);
            }
        }
        v
    }

    pub fn reset_metrics(&self, gpu: &Gpu) {
        gpu.queue.write_buffer(&self.metrics, 0, bytemuck::cast_slice(&[0.0f32; cross_entropy::METRICS_LEN]));
    }
}

/// One graph made ready to run: every pipeline, buffer and bind group created.
pub struct StepGraph {
    pub batch: usize,
    dispatches: Vec<Dispatch>,
    pixels: wgpu::Buffer,
    labels: wgpu::Buffer,
    /// Buffers the activations live in (see `plan`).
    activations: Vec<wgpu::Buffer>,
    logits: (usize, u64),
    _scratch: Vec<wgpu::Buffer>,
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
    ) -> StepGraph {
        let plan = BufferPlan::new(graph);
        let buffers = match share.map(|s| &s.activations) {
            Some(a)
                if a.len() == plan.buffer_floats.len()
                    && a.iter().zip(&plan.buffer_floats).all(|(b, f)| b.size() >= (*f * 4) as u64) =>
            {
                a.clone()
            }
            _ => plan
                .buffer_floats
                .iter()
                .enumerate()
                .map(|(i, f)| gpu.storage(&format!("activations {i}"), *f))
                .collect(),
        };
        let n = graph.batch;
        let pixels = gpu.storage("pixels", n * prepare_batch_words());
        let labels = gpu.storage("labels", n);
        let saved_offsets: Vec<usize> = graph
            .bn_channels
            .iter()
            .scan(0, |acc, c| {
                let off = *acc;
                *acc += (2 * c).next_multiple_of(64);
                Some(off)
            })
            .collect();
        let saved = gpu.storage(
            "bn saved",
            saved_offsets
                .last()
                .map_or(0, |o| o + 2 * graph.bn_channels.last().unwrap())
                .next_multiple_of(64),
        );

        // One Conv2d (variants chosen) per distinct shape.
        let mut convs: HashMap<Conv2dShape, Conv2d> = HashMap::new();
        for node in &graph.nodes {
            if let Node::Conv { shape, .. } = node {
                convs.entry(*shape).or_insert_with(|| Conv2d::new(gpu, *shape, chooser));
            }
        }
        let conv_for = |shape: Conv2dShape| &convs[&shape];
        let scratch_floats = convs.values().map(Conv2d::scratch_floats).max().unwrap_or(0);
        let scratch = gpu.storage("conv scratch", scratch_floats);

        let act =
            |t: TensorId| Slice::from(&buffers[plan.buffer_of[t]]).floats(0, graph.tensor_len(t) as u64);
        let saved_slice =
            |i: usize| Slice::from(&saved).floats(saved_offsets[i] as u64, 2 * graph.bn_channels[i] as u64);
        let step = Slice::from(&params.step);
        let (forward_mode, backward_mode) = graph.shake_modes();
        let mut dispatches = vec![];
        for node in &graph.nodes {
            match *node {
                Node::Prepare { out } => {
                    let prep = prepare_batch::Prepare { batch: n, norm: *norm, augment: graph.augment };
                    dispatches.push(prep.dispatch(gpu, step, (&pixels).into(), act(out)));
                }
                Node::Conv { shape, window, x, weight, out } => {
                    dispatches.push(conv_for(shape).forward(
                        gpu,
                        act(x),
                        params.param(weight),
                        act(out),
                        window,
                    ));
                }
                Node::BatchNorm { shape, x, affine, running, saved, out } => {
                    let bn = BatchNorm::new(shape);
                    let b = BnBuffers { saved: saved_slice(saved), gamma_beta: params.param(affine) };
                    let running = params.param(running);
                    dispatches.extend(match graph.mode {
                        Mode::Train => bn.forward_train(gpu, act(x), b, running, act(out)),
                        Mode::Eval => bn.forward_eval(gpu, act(x), b, running, act(out)),
                    });
                }
                Node::Relu { x, out } => {
                    dispatches.push(relu::forward(gpu, graph.tensor_len(x), act(x), act(out)))
                }
                Node::Shake { block, a, b, shortcut, out } => {
                    let mix = shake_op(graph, a, block, forward_mode, backward_mode);
                    dispatches.push(mix.forward(gpu, step, act(a), act(b), act(shortcut), act(out)));
                }
                Node::Pool { x, out } => {
                    let [_, c, h, w] = graph.tensors[x].dims;
                    dispatches.push(pool::forward(gpu, n * c, h * w, act(x), act(out)));
                }
                Node::Linear { linear: shape, x, param, out } => {
                    dispatches.push(linear::forward(gpu, &shape, act(x), params.param(param), act(out)))
                }
                Node::Loss { logits } => {
                    let classes = graph.tensors[logits].dims[1];
                    dispatches.push(cross_entropy::forward(
                        gpu,
                        n,
                        classes,
                        act(logits),
                        (&labels).into(),
                        (&params.metrics).into(),
                    ));
                }
                Node::LossGrad { logits, dlogits } => {
                    let classes = graph.tensors[logits].dims[1];
                    dispatches.push(cross_entropy::backward(
                        gpu,
                        n,
                        classes,
                        act(logits),
                        (&labels).into(),
                        act(dlogits),
                    ));
                }
                Node::LinearGrad { linear: shape, x, param, dy, dx } => {
                    dispatches.extend(linear::backward(
                        gpu,
                        &shape,
                        act(x),
                        params.param(param),
                        act(dy),
                        act(dx),
                        params.grad(param),
                    ));
                }
                Node::PoolGrad { dy, dx } => {
                    let [_, c, h, w] = graph.tensors[dx].dims;
                    dispatches.push(pool::backward(gpu, n * c, h * w, act(dy), act(dx)));
                }
                Node::ShakeGrad { block, dy, da, db, dshortcut } => {
                    let mix = shake_op(graph, dy, block, forward_mode, backward_mode);
                    dispatches.push(mix.backward(gpu, step, act(dy), act(da), act(db), act(dshortcut)));
                }
                Node::ReluGrad { x, dy, dx, accumulate } => {
                    dispatches.push(relu::backward(
                        gpu,
                        graph.tensor_len(x),
                        act(x),
                        act(dy),
                        act(dx),
                        accumulate,
                    ));
                }
                Node::BatchNormGrad { shape, x, affine, saved, dy, dx } => {
                    let bn = BatchNorm::new(shape);
                    let b = BnBuffers { saved: saved_slice(saved), gamma_beta: params.param(affine) };
                    dispatches.extend(bn.backward(gpu, act(x), b, act(dy), params.grad(affine), act(dx)));
                }
                Node::ConvGradWeight { shape, window, x, dy, weight } => {
                    let conv = conv_for(shape);
                    dispatches.extend(conv.grad_weight(
                        gpu,
                        act(x),
                        act(dy),
                        params.grad(weight),
                        window,
                        Some((&scratch).into()),
                    ));
                }
                Node::ConvGradInput { shape, window, dy, weight, dx, accumulate } => {
                    dispatches.push(conv_for(shape).grad_input(
                        gpu,
                        act(dy),
                        params.param(weight),
                        act(dx),
                        window,
                        accumulate,
                    ));
                }
            }
        }
        if graph.mode == Mode::Train {
            let (w, g, v) = ((&params.weights).into(), (&params.grads).into(), (&params.velocity).into());
            dispatches.push(sgd::step(gpu, sgd_settings, params.trainable_floats, step, w, g, v));
        }
        let logits = (plan.buffer_of[graph.logits], (graph.tensor_len(graph.logits) * 4) as u64);
        StepGraph {
            batch: n,
            dispatches,
            pixels,
            labels,
            activations: buffers,
            logits,
            _scratch: vec![scratch, saved],
        }
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
        assert_eq!(labels.len(), self.batch, "batch size");
        gpu.queue.write_buffer(&self.pixels, 0, pixels);
        gpu.queue.write_buffer(&self.labels, 0, bytemuck::cast_slice(labels));
        gpu.queue.write_buffer(&params.step, 0, bytemuck::bytes_of(&step));
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for d in &self.dispatches {
                d.record(&mut pass);
            }
        }
        after(&mut encoder);
        gpu.queue.submit([encoder.finish()])
    }

    /// The logits of the last submitted batch (waits for it).
    pub fn read_logits(&self, gpu: &Gpu) -> Vec<f32> {
        let (buffer, bytes) = self.logits;
        let all: Vec<f32> = gpu.read(&self.activations[buffer]);
        all[..bytes as usize / 4].to_vec()
    }

    pub fn dispatches(&self) -> &[Dispatch] {
        &self.dispatches
    }
}

fn prepare_batch_words() -> usize {
    IMAGE_BYTES / 4
}

fn shake_op(
    graph: &Graph,
    t: TensorId,
    block: u32,
    forward: ForwardMode,
    backward: BackwardMode,
) -> shake::Shake {
    shake::Shake {
        batch: graph.batch,
        image_len: graph.tensor_len(t) / graph.batch,
        block,
        forward,
        backward,
        level: graph.config.level,
    }
}
