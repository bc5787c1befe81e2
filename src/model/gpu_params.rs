//! The model's parameters on the GPU: values, gradients and momentum of every trainable
//! binding, and the running statistics, each kind in one flat buffer (so SGD is one
//! dispatch), shared by every graph of a model. Bindings start at the device's storage
//! offset alignment, so each can be bound on its own.

use super::graph::ParamId;
use super::params::{ParamSpec, ParamStore};
use crate::gpu::{DeviceLost, Gpu, Slice};
use crate::ops::{StepUniform, cross_entropy, loss_scale};
use crate::shapes::LossScale;

/// Where each binding starts in its flat buffer (trainable or running), and the two
/// buffers' lengths, in floats: bindings start at the device's storage offset alignment.
pub fn flat_layout(specs: &[ParamSpec], limits: &wgpu::Limits) -> (Vec<usize>, usize, usize) {
    let align = crate::gpu::buffers::binding_alignment_floats(limits);
    let mut offsets = vec![];
    let (mut trainable, mut running) = (0, 0);
    for spec in specs {
        let end = if spec.trainable() { &mut trainable } else { &mut running };
        offsets.push(*end);
        *end = (*end + spec.len()).next_multiple_of(align);
    }
    (offsets, trainable, running)
}

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
    /// Where dynamic loss scaling stands (`ops::loss_scale`): scale 1 until a run with f16
    /// activations sets it (`set_loss_scale`).
    pub loss_scale: wgpu::Buffer,
}

impl GpuParams {
    /// Upload parameters (and momentum, when resuming) in the GPU's layouts.
    pub fn upload(gpu: &Gpu, store: &ParamStore, velocity: Option<&[Vec<f32>]>) -> GpuParams {
        let (offsets, trainable, running) = flat_layout(&store.specs, &gpu.limits);
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
            metrics: gpu.storage("metrics", cross_entropy::METRICS_FLOATS),
            loss_scale: loss_scale::state_buffer(gpu, LossScale::NONE),
        }
    }

    pub fn set_loss_scale(&self, gpu: &Gpu, state: LossScale) {
        loss_scale::write_state(gpu, &self.loss_scale, state);
    }

    /// Where loss scaling stands after the last submitted step (waits for it).
    pub fn read_loss_scale(&self, gpu: &Gpu) -> Result<LossScale, DeviceLost> {
        loss_scale::read_state(gpu, &self.loss_scale)
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

    /// Fails only when the device is lost.
    fn read_per_param(&self, gpu: &Gpu, flat_trainable: &wgpu::Buffer) -> Result<Vec<Vec<f32>>, DeviceLost> {
        let (w, r): (Vec<f32>, Vec<f32>) = (gpu.try_read(flat_trainable)?, gpu.try_read(&self.running)?);
        Ok(self
            .specs
            .iter()
            .zip(&self.offsets)
            .map(|(spec, off)| {
                let src = if spec.trainable() { &w } else { &r };
                spec.from_gpu_layout(&src[*off..off + spec.len()])
            })
            .collect())
    }

    /// Parameters and running statistics, host layout.
    pub fn download(&self, gpu: &Gpu) -> Result<ParamStore, DeviceLost> {
        Ok(ParamStore { specs: self.specs.clone(), values: self.read_per_param(gpu, &self.weights)? })
    }

    /// Gradients of the last step (zero for running statistics' entries), host layout.
    pub fn download_grads(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>, DeviceLost> {
        let mut g = self.read_per_param(gpu, &self.grads)?;
        for (spec, v) in self.specs.iter().zip(&mut g) {
            if !spec.trainable() {
                v.iter_mut().for_each(|x| *x = 0.0);
            }
        }
        Ok(g)
    }

    /// Momentum buffers, host layout (zero for running statistics' entries).
    pub fn download_velocity(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>, DeviceLost> {
        let mut v = self.read_per_param(gpu, &self.velocity)?;
        for (spec, x) in self.specs.iter().zip(&mut v) {
            if !spec.trainable() {
                x.iter_mut().for_each(|x| *x = 0.0);
            }
        }
        Ok(v)
    }

    /// Set the metrics accumulators and the count of steps that ran: zeros at an epoch's
    /// start, the saved sums and the batches done when an epoch resumes in its middle.
    pub fn set_metrics(&self, gpu: &Gpu, values: &[f32; cross_entropy::METRICS_LEN], steps: usize) {
        let mut all = [0.0; cross_entropy::METRICS_FLOATS];
        all[..cross_entropy::METRICS_LEN].copy_from_slice(values);
        all[cross_entropy::STEP_COUNTER] = steps as f32;
        gpu.queue.write_buffer(&self.metrics, 0, bytemuck::cast_slice(&all));
    }
}
