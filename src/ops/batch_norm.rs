//! Batch norm (shaders/batch_norm.wgsl; reference `cpu::batch_norm`).

use crate::gpu::{Binding, Dispatch, Gpu, Kernel, ShaderInterface, Slice};
use crate::shapes::BnShape;
use crate::struct_layout;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct BnParams {
    relu: u32,
    momentum: f32,
    eps: f32,
    _pad: u32,
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

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["batch_norm_vec4", "batch_norm_scalar"],
    bindings: &[PARAMS, X, SAVED, RUNNING, GAMMA_BETA, Y, DY, GRAD_GAMMA_BETA, DX],
    structs: &[struct_layout!(BnParams { relu, momentum, eps })],
    constants: &[],
};

/// What every pass of one batch norm layer reads: `saved`, 2C floats (mean, inv_std) written
/// by the forward pass for the backward, and `gamma_beta`, 2C. The running statistics (2C:
/// mean, var) only the forward passes take; the gradient `grad_gamma_beta` (2C) only backward.
#[derive(Clone, Copy)]
pub struct BnBuffers<'a> {
    pub saved: Slice<'a>,
    pub gamma_beta: Slice<'a>,
}

pub struct BatchNorm {
    pub shape: BnShape,
}

impl BatchNorm {
    pub fn new(shape: BnShape) -> Self {
        BatchNorm { shape }
    }

    /// Planes that are a multiple of 4 (every plane of the network) load vec4s.
    fn module(&self) -> &'static str {
        if self.shape.plane.is_multiple_of(4) { "batch_norm_vec4" } else { "batch_norm_scalar" }
    }

    fn elementwise_grid(&self, gpu: &Gpu) -> [u32; 3] {
        let quad = if self.shape.plane.is_multiple_of(4) { 4 } else { 1 };
        gpu.grid_1d(self.shape.len() / quad)
    }

    /// The kernel of `entry`, specialised to this shape (the shader's overrides).
    fn kernel(&self, gpu: &Gpu, entry: &str) -> Kernel {
        let s = &self.shape;
        let shape = [("BATCH", s.batch as f64), ("CHANNELS", s.channels as f64), ("PLANE", s.plane as f64)];
        Kernel::new(gpu, self.module(), entry, &shape)
    }

    fn params(&self, gpu: &Gpu) -> wgpu::Buffer {
        let s = &self.shape;
        gpu.uniform(
            "bn params",
            &BnParams { relu: s.relu as u32, momentum: s.momentum as f32, eps: s.eps as f32, _pad: 0 },
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
    ) -> Vec<Dispatch> {
        let params = self.params(gpu);
        let stats = self.kernel(gpu, "statistics").dispatch(
            gpu,
            &[(PARAMS, (&params).into()), (X, x), (SAVED, b.saved), (RUNNING, running)],
            [self.shape.channels as u32, 1, 1],
        );
        vec![stats, self.normalize(gpu, &params, x, b, y)]
    }

    /// Evaluation forward: y = bn(x) with the running statistics.
    pub fn forward_eval(&self, gpu: &Gpu, x: Slice, b: BnBuffers, running: Slice, y: Slice) -> Vec<Dispatch> {
        let params = self.params(gpu);
        let stats = self.kernel(gpu, "eval_statistics").dispatch(
            gpu,
            &[(PARAMS, (&params).into()), (SAVED, b.saved), (RUNNING, running)],
            gpu.grid_1d(self.shape.channels),
        );
        vec![stats, self.normalize(gpu, &params, x, b, y)]
    }

    fn normalize(&self, gpu: &Gpu, params: &wgpu::Buffer, x: Slice, b: BnBuffers, y: Slice) -> Dispatch {
        self.kernel(gpu, "normalize").dispatch(
            gpu,
            &[(PARAMS, params.into()), (X, x), (SAVED, b.saved), (GAMMA_BETA, b.gamma_beta), (Y, y)],
            self.elementwise_grid(gpu),
        )
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
    ) -> Vec<Dispatch> {
        let params = self.params(gpu);
        let reads = [
            (PARAMS, (&params).into()),
            (X, x),
            (SAVED, b.saved),
            (GAMMA_BETA, b.gamma_beta),
            (DY, dy),
            (GRAD_GAMMA_BETA, grad_gamma_beta),
        ];
        let reduce = self.kernel(gpu, "backward_reduce").dispatch(
            gpu,
            &reads,
            [self.shape.channels as u32, 1, 1],
        );
        let apply = self.kernel(gpu, "backward_apply").dispatch(
            gpu,
            &[&reads[..], &[(DX, dx)]].concat(),
            self.elementwise_grid(gpu),
        );
        vec![reduce, apply]
    }
}
