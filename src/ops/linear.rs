//! Fully connected layer (shaders/linear.wgsl; reference `cpu::linear`). Parameters are one
//! slice: W [out][in] followed by b [out].

use crate::gpu::{Dispatch, Gpu, Kernel, Slice, grid_1d};

#[derive(Clone, Copy, Debug)]
pub struct Linear {
    pub batch: usize,
    pub inputs: usize,
    pub outputs: usize,
}

impl Linear {
    pub fn param_len(&self) -> usize {
        self.outputs * (self.inputs + 1)
    }

    fn params(&self, gpu: &Gpu) -> wgpu::Buffer {
        gpu.uniform("linear params", &[self.batch as u32, self.inputs as u32, self.outputs as u32, 0])
    }

    pub fn forward(&self, gpu: &Gpu, x: Slice, weight_bias: Slice, y: Slice) -> Dispatch {
        let p = self.params(gpu);
        Kernel::new(gpu, "linear", "forward", &[]).dispatch(
            gpu,
            &[(0, (&p).into()), (1, x), (2, weight_bias), (3, y)],
            grid_1d(self.batch * self.outputs, 64),
        )
    }

    /// dx, then the gradient of W and b (written to `grad_weight_bias`).
    pub fn backward(
        &self,
        gpu: &Gpu,
        x: Slice,
        weight_bias: Slice,
        dy: Slice,
        dx: Slice,
        grad_weight_bias: Slice,
    ) -> Vec<Dispatch> {
        let p = self.params(gpu);
        let grad_input = Kernel::new(gpu, "linear", "grad_input", &[]).dispatch(
            gpu,
            &[(0, (&p).into()), (2, weight_bias), (4, dy), (5, dx)],
            grid_1d(self.batch * self.inputs, 64),
        );
        let grad_weight = Kernel::new(gpu, "linear", "grad_weight", &[]).dispatch(
            gpu,
            &[(0, (&p).into()), (1, x), (4, dy), (6, grad_weight_bias)],
            grid_1d(self.param_len(), 64),
        );
        vec![grad_input, grad_weight]
    }
}
