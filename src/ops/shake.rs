//! The shake-shake mix (shaders/shake.wgsl; reference `cpu::shake`).

use crate::gpu::{Dispatch, Gpu, Kernel, Slice, grid_1d};
use crate::shapes::{BackwardMode, ForwardMode, Level};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ShakeParams {
    batch: u32,
    image_len: u32,
    block: u32,
    forward_mode: u32,
    backward_mode: u32,
    level: u32,
    _pad: [u32; 2],
}

/// One block's mix: which coefficients it draws, over tensors of `batch` x `image_len`.
#[derive(Clone, Copy, Debug)]
pub struct Shake {
    pub batch: usize,
    pub image_len: usize,
    pub block: u32,
    pub forward: ForwardMode,
    pub backward: BackwardMode,
    pub level: Level,
}

impl Shake {
    fn params(&self, gpu: &Gpu) -> wgpu::Buffer {
        let forward_mode = match self.forward {
            ForwardMode::Shake => 0,
            ForwardMode::Even => 1,
        };
        let backward_mode = match self.backward {
            BackwardMode::Shake => 0,
            BackwardMode::Even => 1,
            BackwardMode::Keep => 2,
        };
        let level = match self.level {
            Level::Batch => 0,
            Level::Image => 1,
        };
        gpu.uniform(
            "shake params",
            &ShakeParams {
                batch: self.batch as u32,
                image_len: self.image_len as u32,
                block: self.block,
                forward_mode,
                backward_mode,
                level,
                _pad: [0; 2],
            },
        )
    }

    fn len(&self) -> usize {
        self.batch * self.image_len
    }

    /// y = shortcut + alpha a + (1 - alpha) b; `step` is the StepUniform buffer.
    pub fn forward(&self, gpu: &Gpu, step: Slice, a: Slice, b: Slice, shortcut: Slice, y: Slice) -> Dispatch {
        let p = self.params(gpu);
        Kernel::new(gpu, "shake", "forward", &[]).dispatch(
            gpu,
            &[(0, (&p).into()), (1, step), (2, a), (3, b), (4, shortcut), (5, y)],
            grid_1d(self.len(), 256),
        )
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
    ) -> Dispatch {
        let p = self.params(gpu);
        Kernel::new(gpu, "shake", "backward", &[]).dispatch(
            gpu,
            &[(0, (&p).into()), (1, step), (6, dy), (7, da), (8, db), (9, dshortcut)],
            grid_1d(self.len(), 256),
        )
    }
}
