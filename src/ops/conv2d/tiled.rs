//! Implicit GEMM through workgroup-memory tiles of 64 x 64 outputs (`tiled`), or 64 x 32 and
//! 64 x 16 (`tiled_n32`, `tiled_n16`) for passes of at most 32 or 16 channels: for GPUs,
//! built like the published WGSL GEMMs (../shared/notes/gpu-kernels-published.md). The
//! shape is in override constants (gemm_shape.wgsl), so decoding a row or column divides by
//! constants. Shaders: shaders/conv2d/tiled/, with conv2d_params.wgsl and gemm_shape.wgsl
//! from shaders/conv2d/.
//!
//! Log:
//! - The batch read from p rather than fixed per pipeline (tiled, direct, Winograd): a first
//!   bench train of 8 2x4d on lavapipe compiled 245 pipelines instead of 308, since the
//!   images a candidate is checked on, the 16 it is timed on and the training batch now
//!   share them. 3x3 64->64 @16, old / new, two alternating runs each: within noise
//!   (winograd_4x4 forward 41.5, 45.2 / 42.3, 43.8 ms; grad_weight 36.3, 38.1 / 38.4, 40.8;
//!   tiled alike).
//! - Never yet timed on a GPU; AMD's compiler's registers and occupancy: docs/amd-stats.md.

use super::{Conv2d, ConvPass, ConvVariant, Rejection, fits_tile};
use crate::shapes::Conv2dShape;

/// `tiled` runs any pass; a narrower tile only where N fits it (elsewhere 64 wastes nothing
/// and reuses more).
pub(super) fn admits(v: ConvVariant, pass: ConvPass, shape: &Conv2dShape) -> Result<(), Rejection> {
    match v {
        ConvVariant::TiledN32 | ConvVariant::TiledN16 => fits_tile(v, pass, shape),
        _ => Ok(()),
    }
}

pub(super) fn module(pass: ConvPass, shape: &Conv2dShape) -> &'static str {
    match pass {
        // The forward's weights as vec4s of 4 output channels where cout is a multiple of 4.
        ConvPass::Forward if shape.cout.is_multiple_of(4) => "conv2d_forward_tiled",
        ConvPass::Forward => "conv2d_forward_tiled_scalar",
        ConvPass::GradInput => "conv2d_grad_input_tiled",
        ConvPass::GradWeight => "conv2d_grad_weight_tiled",
    }
}

/// Grids of (M / 64, N / tile, splits).
pub(super) fn launch(conv: &Conv2d, pass: ConvPass, constants: &mut Vec<(&'static str, f64)>) -> [u32; 3] {
    let tile_n = conv.variant(pass).tile_n();
    constants.push(("WG_N", (tile_n / 4) as f64));
    // The weight gradient's K runs along pixels: load it along the invocations.
    constants.push(("K_FASTEST", f64::from(u8::from(pass == ConvPass::GradWeight))));
    constants.extend(conv.shape_constants(pass));
    let (m, n) = pass.gemm_mn(&conv.shape);
    let splits = if pass == ConvPass::GradWeight { conv.splits() } else { 1 };
    [m.div_ceil(64) as u32, n.div_ceil(tile_n) as u32, splits as u32]
}
