//! Batch norm (shaders/batch_norm.wgsl; reference `cpu::batch_norm`).

use crate::gpu::shaders::module_in;
use crate::gpu::{Binding, CompileError, Dispatch, Gpu, Kernel, ShaderInterface, Slice};
use crate::shapes::BnShape;
use crate::struct_layout;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct BnParams {
    relu: u32,
    momentum: f32,
    eps: f32,
    batch: u32,
    ghost: u32,
}

const PARAMS: Binding = Binding::new(0, "bn");
const X: Binding = Binding::new(1, "x");
const SAVED: Binding = Binding::new(2, "saved");
const RUNNING: Binding = Binding::new(3, "running");
const GAMMA_BETA: Binding = Binding::new(4, "gamma_beta");
const Y: Binding = Binding::new(5, "y");
const DY: Binding = Binding::new(6, "dy");
const GRAD_GAMMA_BETA: Binding = Binding::new(7, "grad_gamma_beta");
const DX: Binding = Binding::new(8, "dx");
const PARTIALS: Binding = Binding::new(9, "partials");

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["batch_norm_vec4", "batch_norm_scalar"],
    bindings: &[PARAMS, X, SAVED, RUNNING, GAMMA_BETA, Y, DY, GRAD_GAMMA_BETA, DX, PARTIALS],
    structs: &[struct_layout!(BnParams { relu, momentum, eps, batch, ghost })],
    constants: &[],
};

/// What every pass of one batch norm layer reads: `saved`, 2C floats (mean, inv_std) a ghost
/// batch (`saved_floats()`) written by the forward pass for the backward, and `gamma_beta`,
/// 2C; and `partials`, scratch of at least `partials_floats()` for its reductions (any
/// layer's, since layers run in turn).
/// The running statistics (2C: mean, var) only the forward passes take; the gradient
/// `grad_gamma_beta` (2C) only backward.
#[derive(Clone, Copy)]
pub struct BnBuffers<'a> {
    pub saved: Slice<'a>,
    pub gamma_beta: Slice<'a>,
    pub partials: Slice<'a>,
}

pub struct BatchNorm {
    pub shape: BnShape,
    /// Workgroups each channel's reductions are spread over (shaders/batch_norm.wgsl GROUPS).
    pub groups: usize,
}

/// Workgroups a GPU's batch-norm reductions aim for in all: a few per SM of a large GPU.
const GPU_REDUCTION_WORKGROUPS: usize = 512;

impl BatchNorm {
    /// One workgroup a channel, which finishes it.
    pub fn new(shape: BnShape) -> Self {
        BatchNorm { shape, groups: 1 }
    }

    /// `groups` workgroups a channel and ghost batch (at most one an image), merged by a
    /// second dispatch.
    pub fn with_groups(shape: BnShape, groups: usize) -> Self {
        let images = shape.ghost.div_ceil(groups.clamp(1, shape.ghost));
        // As many groups as runs of `images` images: none is left empty.
        BatchNorm { shape, groups: shape.ghost.div_ceil(images) }
    }

    /// As the device wants it: a CPU adapter runs a workgroup a core at a time, so one a
    /// channel keeps it busy (lavapipe, 128x16x32x32: 32 groups a channel took the forward
    /// from 7.4-8.1 to 14.5-14.9 ms, the backward from 10.0-11.2 to 15.0-17.5); a GPU wants
    /// hundreds in flight.
    pub fn for_device(gpu: &Gpu, shape: BnShape) -> Self {
        Self::reducing(shape, gpu.info.device_type != wgpu::DeviceType::Cpu)
    }

    /// As `for_device`, for a GPU or not.
    pub fn reducing(shape: BnShape, on_gpu: bool) -> Self {
        if on_gpu {
            BatchNorm::with_groups(shape, GPU_REDUCTION_WORKGROUPS.div_ceil(shape.channels))
        } else {
            BatchNorm::new(shape)
        }
    }

    /// Scratch floats the reductions' partial results need.
    pub fn partials_floats(&self) -> usize {
        4 * self.shape.channels * self.groups * self.shape.ghosts()
    }

    /// Floats of the statistics saved for the backward: mean and 1/std a ghost batch.
    pub fn saved_floats(shape: &BnShape) -> usize {
        2 * shape.channels * shape.ghosts()
    }

    /// Whether a second dispatch finishes the reductions: several workgroups a channel, or
    /// several ghost batches (whose running-statistics updates go in turn).
    fn merges(&self) -> bool {
        self.groups > 1 || self.shape.ghosts() > 1
    }

    /// The dispatch of `entry` that finishes a reduction, one thread a channel, where one is
    /// needed (`merges`).
    fn merge(
        &self,
        gpu: &Gpu,
        entry: &str,
        bindings: &[(Binding, Slice)],
    ) -> Result<Option<Dispatch>, CompileError> {
        if !self.merges() {
            return Ok(None);
        }
        Ok(Some(self.kernel(gpu, entry)?.dispatch(gpu, bindings, gpu.grid_1d(self.shape.channels))))
    }

    /// The reductions' grid: channels, workgroups a channel, ghost batches.
    fn reduction_grid(&self) -> [u32; 3] {
        [self.shape.channels as u32, self.groups as u32, self.shape.ghosts() as u32]
    }

    /// Planes that are a multiple of 4 (every plane of the network) load vec4s.
    fn module(&self) -> &'static str {
        let module = if self.shape.plane.is_multiple_of(4) { "batch_norm_vec4" } else { "batch_norm_scalar" };
        module_in(module, self.shape.precision)
    }

    fn elementwise_grid(&self, gpu: &Gpu) -> [u32; 3] {
        let quad = if self.shape.plane.is_multiple_of(4) { 4 } else { 1 };
        gpu.grid_1d(self.shape.len() / quad)
    }

    /// The kernel of `entry`, specialised to this shape but its batch (the shader's overrides).
    fn kernel(&self, gpu: &Gpu, entry: &str) -> Result<Kernel, CompileError> {
        let s = &self.shape;
        let shape =
            [("CHANNELS", s.channels as f64), ("PLANE", s.plane as f64), ("GROUPS", self.groups as f64)];
        Kernel::new(gpu, self.module(), entry, &shape)
    }

    fn params(&self, gpu: &Gpu) -> wgpu::Buffer {
        let s = &self.shape;
        gpu.uniform(
            "bn params",
            &BnParams {
                relu: s.relu as u32,
                momentum: s.momentum as f32,
                eps: s.eps as f32,
                batch: s.batch as u32,
                ghost: s.ghost as u32,
            },
        )
    }

    /// Training forward: batch statistics (running statistics updated), then y = bn(x).
    pub fn forward_train(
        &self,
        gpu: &Gpu,
        x: Slice,
        b: BnBuffers,
        running: Slice,
        y: Slice,
    ) -> Result<Vec<Dispatch>, CompileError> {
        let mut dispatches = self.statistics_train(gpu, x, b, running)?;
        dispatches.push(self.normalize(gpu, x, b, y)?);
        Ok(dispatches)
    }

    /// Evaluation forward: y = bn(x) with the running statistics.
    pub fn forward_eval(
        &self,
        gpu: &Gpu,
        x: Slice,
        b: BnBuffers,
        running: Slice,
        y: Slice,
    ) -> Result<Vec<Dispatch>, CompileError> {
        let whole = self.whole_batch();
        Ok(vec![whole.statistics_eval(gpu, b, running)?, whole.normalize(gpu, x, b, y)?])
    }

    /// This layer without ghost batches: evaluation's running statistics serve every image.
    fn whole_batch(&self) -> BatchNorm {
        BatchNorm { shape: self.shape.with_ghost_batches(self.shape.batch), groups: self.groups }
    }

    /// The batch's mean and 1/std into `b.saved`, and the running statistics updated: the
    /// training forward without its output, for a consumer that normalises as it reads x
    /// (the shake mix).
    pub fn statistics_train(
        &self,
        gpu: &Gpu,
        x: Slice,
        b: BnBuffers,
        running: Slice,
    ) -> Result<Vec<Dispatch>, CompileError> {
        let params = self.params(gpu);
        let reads = [
            (PARAMS, (&params).into()),
            (X, x),
            (SAVED, b.saved),
            (RUNNING, running),
            (PARTIALS, b.partials),
        ];
        let stats = self.kernel(gpu, "statistics")?.dispatch(gpu, &reads, self.reduction_grid());
        let mut dispatches = vec![stats];
        dispatches.extend(self.merge(gpu, "merge_statistics", &reads)?);
        Ok(dispatches)
    }

    /// The running statistics into `b.saved`, as the evaluation forward normalises with them.
    pub fn statistics_eval(&self, gpu: &Gpu, b: BnBuffers, running: Slice) -> Result<Dispatch, CompileError> {
        let params = self.whole_batch().params(gpu);
        Ok(self.kernel(gpu, "eval_statistics")?.dispatch(
            gpu,
            &[(PARAMS, (&params).into()), (SAVED, b.saved), (RUNNING, running)],
            gpu.grid_1d(self.shape.channels),
        ))
    }

    fn normalize(&self, gpu: &Gpu, x: Slice, b: BnBuffers, y: Slice) -> Result<Dispatch, CompileError> {
        let params = self.params(gpu);
        Ok(self.kernel(gpu, "normalize")?.dispatch(
            gpu,
            &[(PARAMS, (&params).into()), (X, x), (SAVED, b.saved), (GAMMA_BETA, b.gamma_beta), (Y, y)],
            self.elementwise_grid(gpu),
        ))
    }

    /// Backward of the training forward: grad_gamma_beta = (dgamma, dbeta), dx.
    pub fn backward(
        &self,
        gpu: &Gpu,
        x: Slice,
        b: BnBuffers,
        dy: Slice,
        grad_gamma_beta: Slice,
        dx: Slice,
    ) -> Result<Vec<Dispatch>, CompileError> {
        let params = self.params(gpu);
        let reads = [
            (PARAMS, (&params).into()),
            (X, x),
            (SAVED, b.saved),
            (GAMMA_BETA, b.gamma_beta),
            (DY, dy),
            (GRAD_GAMMA_BETA, grad_gamma_beta),
            (PARTIALS, b.partials),
        ];
        let reduce = self.kernel(gpu, "backward_reduce")?.dispatch(gpu, &reads, self.reduction_grid());
        let mut dispatches = vec![reduce];
        let merge = [(PARAMS, (&params).into()), (GRAD_GAMMA_BETA, grad_gamma_beta), (PARTIALS, b.partials)];
        dispatches.extend(self.merge(gpu, "merge_gradients", &merge)?);
        dispatches.push(self.kernel(gpu, "backward_apply")?.dispatch(
            gpu,
            &[&reads[..], &[(DX, dx)]].concat(),
            self.elementwise_grid(gpu),
        ));
        Ok(dispatches)
    }
}
