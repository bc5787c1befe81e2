//! The shake-shake mix (shaders/shake.wgsl; reference `cpu::shake` of the branches as
//! `cpu::batch_norm` normalises them): vec4 quads when a plane's length is a multiple of 4
//! (every tensor of the network), single elements otherwise.

use super::STEP_UNIFORM;
use crate::gpu::shaders::module_in;
use crate::gpu::{Binding, CompileError, Dispatch, Gpu, Kernel, ShaderInterface, Slice};
use crate::random::{STREAM_ALPHA, STREAM_BETA};
use crate::shapes::{BackwardMode, ForwardMode, Level, Precision};
use crate::struct_layout;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ShakeParams {
    batch: u32,
    block: u32,
    forward_mode: u32,
    backward_mode: u32,
    level: u32,
    ghost: u32,
    first_image: u32,
    _pad: u32,
}

const PARAMS: Binding = Binding::new(0, "sp");
const STEP: Binding = Binding::new(1, "st");
const A: Binding = Binding::new(2, "a");
const B: Binding = Binding::new(3, "b");
const SHORTCUT: Binding = Binding::new(4, "shortcut");
const Y: Binding = Binding::new(5, "y");
const DY: Binding = Binding::new(6, "dy");
const DA: Binding = Binding::new(7, "da");
const DB: Binding = Binding::new(8, "db");
const DSHORTCUT: Binding = Binding::new(9, "dshortcut");
const A_SAVED: Binding = Binding::new(10, "a_saved");
const A_GAMMA_BETA: Binding = Binding::new(11, "a_gamma_beta");
const B_SAVED: Binding = Binding::new(12, "b_saved");
const B_GAMMA_BETA: Binding = Binding::new(13, "b_gamma_beta");

/// The modes as the shader numbers them.
const FORWARD_SHAKE: u32 = 0;
const FORWARD_EVEN: u32 = 1;
const BACKWARD_SHAKE: u32 = 0;
const BACKWARD_EVEN: u32 = 1;
const BACKWARD_KEEP: u32 = 2;
const LEVEL_BATCH: u32 = 0;
const LEVEL_IMAGE: u32 = 1;

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["shake_vec4", "shake_scalar"],
    bindings: &[
        PARAMS,
        STEP,
        A,
        B,
        SHORTCUT,
        Y,
        DY,
        DA,
        DB,
        DSHORTCUT,
        A_SAVED,
        A_GAMMA_BETA,
        B_SAVED,
        B_GAMMA_BETA,
    ],
    structs: &[
        struct_layout!(ShakeParams { batch, block, forward_mode, backward_mode, level, ghost, first_image }),
        STEP_UNIFORM,
    ],
    constants: &[
        ("STREAM_ALPHA", STREAM_ALPHA),
        ("STREAM_BETA", STREAM_BETA),
        ("FORWARD_SHAKE", FORWARD_SHAKE),
        ("FORWARD_EVEN", FORWARD_EVEN),
        ("BACKWARD_SHAKE", BACKWARD_SHAKE),
        ("BACKWARD_EVEN", BACKWARD_EVEN),
        ("BACKWARD_KEEP", BACKWARD_KEEP),
        ("LEVEL_BATCH", LEVEL_BATCH),
        ("LEVEL_IMAGE", LEVEL_IMAGE),
    ],
};

/// A branch as the mix reads it: its last convolution's output `x`, and the batch norm the
/// mix applies to it (`saved`: mean[C], inv_std[C] a ghost batch; `gamma_beta`: gamma[C],
/// beta[C]).
#[derive(Clone, Copy)]
pub struct Branch<'a> {
    pub x: Slice<'a>,
    pub saved: Slice<'a>,
    pub gamma_beta: Slice<'a>,
}

/// One block's mix: which coefficients it draws, over tensors of `batch` x `channels` x
/// `plane`.
#[derive(Clone, Copy, Debug)]
pub struct Shake {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
    pub block: u32,
    pub forward: ForwardMode,
    pub backward: BackwardMode,
    pub level: Level,
    /// Images a ghost batch of the branches' norms (`BnShape::ghost`).
    pub ghost: usize,
    /// The batch's first image in the step's whole batch: per-image draws are keyed by it.
    pub first_image: usize,
    /// The element type of the branches, the shortcut, the output and their gradients.
    pub precision: Precision,
}

impl Shake {
    fn params(&self, gpu: &Gpu) -> wgpu::Buffer {
        let forward_mode = match self.forward {
            ForwardMode::Shake => FORWARD_SHAKE,
            ForwardMode::Even => FORWARD_EVEN,
        };
        let backward_mode = match self.backward {
            BackwardMode::Shake => BACKWARD_SHAKE,
            BackwardMode::Even => BACKWARD_EVEN,
            BackwardMode::Keep => BACKWARD_KEEP,
        };
        let level = match self.level {
            Level::Batch => LEVEL_BATCH,
            Level::Image => LEVEL_IMAGE,
        };
        gpu.uniform(
            "shake params",
            &ShakeParams {
                batch: self.batch as u32,
                block: self.block,
                forward_mode,
                backward_mode,
                level,
                ghost: self.ghost as u32,
                first_image: self.first_image as u32,
                _pad: 0,
            },
        )
    }

    /// Elements a quad: 4 (vec4s) when a plane's length allows.
    fn quad(&self) -> usize {
        if self.plane.is_multiple_of(4) { 4 } else { 1 }
    }

    /// The kernel of `entry`, specialised to this shape (the shader's overrides).
    fn kernel(&self, gpu: &Gpu, entry: &str) -> Result<Kernel, CompileError> {
        let module = if self.quad() == 4 { "shake_vec4" } else { "shake_scalar" };
        let shape = [("CHANNELS", self.channels as f64), ("PLANE", self.plane as f64)];
        Kernel::new(gpu, module_in(module, self.precision), entry, &shape)
    }

    fn grid(&self, gpu: &Gpu) -> [u32; 3] {
        gpu.grid_1d(self.batch * self.channels * self.plane / self.quad())
    }

    /// y = shortcut + alpha bn_a(a.x) + (1 - alpha) bn_b(b.x); `step` is the StepUniform
    /// buffer.
    pub fn forward(
        &self,
        gpu: &Gpu,
        step: Slice,
        a: Branch,
        b: Branch,
        shortcut: Slice,
        y: Slice,
    ) -> Result<Dispatch, CompileError> {
        let p = self.params(gpu);
        Ok(self.kernel(gpu, "forward")?.dispatch(
            gpu,
            &[
                (PARAMS, (&p).into()),
                (STEP, step),
                (A, a.x),
                (A_SAVED, a.saved),
                (A_GAMMA_BETA, a.gamma_beta),
                (B, b.x),
                (B_SAVED, b.saved),
                (B_GAMMA_BETA, b.gamma_beta),
                (SHORTCUT, shortcut),
                (Y, y),
            ],
            self.grid(gpu),
        ))
    }

    /// da = beta dy, db = (1 - beta) dy, dshortcut = dy.
    pub fn backward(
        &self,
        gpu: &Gpu,
        step: Slice,
        dy: Slice,
        da: Slice,
        db: Slice,
        dshortcut: Slice,
    ) -> Result<Dispatch, CompileError> {
        let p = self.params(gpu);
        Ok(self.kernel(gpu, "backward")?.dispatch(
            gpu,
            &[(PARAMS, (&p).into()), (STEP, step), (DY, dy), (DA, da), (DB, db), (DSHORTCUT, dshortcut)],
            self.grid(gpu),
        ))
    }
}
