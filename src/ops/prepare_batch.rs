//! CIFAR bytes to a normalised batch (shaders/prepare_batch.wgsl; reference
//! `cpu::prepare_batch`).

use super::STEP_UNIFORM;
use crate::gpu::shaders::module_in;
use crate::gpu::{Binding, CompileError, Dispatch, Gpu, Kernel, ShaderInterface, Slice};
use crate::random::{STREAM_CROP_COL, STREAM_CROP_ROW, STREAM_FLIP};
use crate::shapes::{IMAGE_BYTES, Normalization, Precision, SIDE};
use crate::struct_layout;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PrepareParams {
    batch: u32,
    augment: u32,
    first_image: u32,
    _pad: u32,
    mean: [f32; 4],
    inv_std: [f32; 4],
}

const PARAMS: Binding = Binding::new(0, "pp");
const STEP: Binding = Binding::new(1, "st");
const PIXELS: Binding = Binding::new(2, "pixels");
const IMAGES: Binding = Binding::new(3, "images");

pub const INTERFACE: ShaderInterface = ShaderInterface {
    modules: &["prepare_batch"],
    bindings: &[PARAMS, STEP, PIXELS, IMAGES],
    structs: &[struct_layout!(PrepareParams { batch, augment, first_image, mean, inv_std }), STEP_UNIFORM],
    constants: &[
        ("STREAM_CROP_ROW", STREAM_CROP_ROW),
        ("STREAM_CROP_COL", STREAM_CROP_COL),
        ("STREAM_FLIP", STREAM_FLIP),
        ("SIDE", SIDE as u32),
        ("PLANE", (SIDE * SIDE) as u32),
        ("IMAGE_BYTES", IMAGE_BYTES as u32),
    ],
};

/// How a batch is prepared: normalised per channel, with crops and flips drawn (training)
/// or not (evaluation).
#[derive(Clone, Copy, Debug)]
pub struct Prepare {
    pub batch: usize,
    pub norm: Normalization,
    pub augment: bool,
    /// The batch's first image in the step's whole batch: the draws are keyed by it.
    pub first_image: usize,
    /// The element type of the images written.
    pub precision: Precision,
}

impl Prepare {
    /// `pixels` holds batch x 3072 bytes (as u32 words); `images` batch x 3 x 32 x 32 floats.
    /// Crops and flips are drawn from the StepUniform `step`'s seed and step.
    pub fn dispatch(
        &self,
        gpu: &Gpu,
        step: Slice,
        pixels: Slice,
        images: Slice,
    ) -> Result<Dispatch, CompileError> {
        let (mean, std) = (self.norm.mean, self.norm.std);
        let p = gpu.uniform(
            "prepare params",
            &PrepareParams {
                batch: self.batch as u32,
                augment: self.augment as u32,
                first_image: self.first_image as u32,
                _pad: 0,
                mean: [mean[0], mean[1], mean[2], 0.0],
                inv_std: [1.0 / std[0], 1.0 / std[1], 1.0 / std[2], 0.0],
            },
        );
        Ok(Kernel::new(gpu, module_in("prepare_batch", self.precision), "main", &[])?.dispatch(
            gpu,
            &[(PARAMS, (&p).into()), (STEP, step), (PIXELS, pixels), (IMAGES, images)],
            gpu.grid_1d(self.batch * IMAGE_BYTES),
        ))
    }
}
