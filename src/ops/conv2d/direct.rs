//! Direct convolution through workgroup memory (`direct`): a patch of the input staged once
//! for tiles of 8 x 8 pixels by 32 channels, or 16 x 8 by 16, for the forward and the
//! stride-1 input gradient of at most 32 channels: for GPUs, where a narrow layer's GEMM
//! form reloads its small K many times. The shape is in override constants (gemm_shape.wgsl).
//! Shaders: shaders/conv2d/direct/, with gemm_shape.wgsl from shaders/conv2d/.
//!
//! Log: never yet timed on a GPU; AMD's compiler's registers and occupancy:
//! docs/amd-stats.md.

use super::{Conv2d, ConvPass, ConvVariant, Rejection, fits_tile, require};
use crate::shapes::Conv2dShape;

/// Its patch holds windows up to 3x3 at stride 2; the input gradient is a convolution only
/// at stride 1 (at 2 it needs conv2d_grad_input_register's parity classes); the weight
/// gradient is a reduction, not a convolution.
pub(super) fn admits(v: ConvVariant, pass: ConvPass, shape: &Conv2dShape) -> Result<(), Rejection> {
    use Rejection::*;
    require(pass != ConvPass::GradWeight, NoWeightGradient)?;
    require(pass != ConvPass::GradInput || shape.stride == 1, StridedInputGradient)?;
    let window = shape.ksize <= 3 && shape.stride <= 2;
    require(window, WindowTooLarge { ksize: shape.ksize, stride: shape.stride })?;
    fits_tile(v, pass, shape)
}

pub(super) fn module(pass: ConvPass) -> &'static str {
    match pass {
        ConvPass::Forward => "conv2d_forward_direct",
        ConvPass::GradInput => "conv2d_grad_input_direct",
        ConvPass::GradWeight => unreachable!("`admits` keeps direct to forward and grad_input"),
    }
}

/// Grids of (pixel tiles, channel tiles, images): tiles of 8 x 8 pixels by 32 channels, or
/// 16 x 8 by 16 where the pass has no more (conv2d_direct.wgsl's tile_rows).
pub(super) fn launch(conv: &Conv2d, pass: ConvPass, constants: &mut Vec<(&'static str, f64)>) -> [u32; 3] {
    let s = &conv.shape;
    let n = pass.gemm_n(s);
    let (out_tile, tile_rows) = if n <= 16 { (16, 16) } else { (32, 8) };
    constants.push(("OUT_TILE", out_tile as f64));
    constants.extend(conv.shape_constants(pass));
    let (rows, cols) = match pass {
        ConvPass::GradInput => (s.h, s.w),
        ConvPass::Forward | ConvPass::GradWeight => (s.out_h, s.out_w),
    };
    let tiles = rows.div_ceil(tile_rows) * cols.div_ceil(8);
    [tiles as u32, n.div_ceil(out_tile) as u32, s.batch as u32]
}
