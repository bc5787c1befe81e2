//! Register kernels for CPU adapters (llvmpipe): each invocation accumulates a block of 4
//! pixels (or taps) x 32 channels, or 8 x 16 (`_n16`, for passes of at most 16 channels), in
//! registers; a row of the other operand is shared by subgroup broadcast
//! (`register_subgroup`) or loaded by each invocation (`register_plain`, without subgroups).
//! The shape comes from the uniform, so one pipeline serves every shape of a kernel size and
//! stride. Shaders: shaders/conv2d/register/, with register_block.wgsl, lanes_*.wgsl and
//! register_main_subgroup.wgsl from shaders/conv2d/ (Winograd's GEMMs use them too).
//!
//! Log (lavapipe, 2 cores, batch 128, `shakeshake bench ops`):
//! - Eight named mat4x4 accumulators (`Block`) instead of an array: about 2x; llvmpipe kept
//!   the array in memory.
//! - Modules created without wgpu's injected bounds checks: 3.7x; with the accumulators,
//!   forward 3x3 32->32 @32 went from 4.8 to 37.6 GFLOP/s.
//! - Blocks of 8 x 16 (N16) for passes of at most 16 channels: 3x3 16->16 @32, forward /
//!   grad_input / grad_weight 10.7 / 10.5 / 11.8 -> 15.8 / 16.4 / 14.4 GFLOP/s. Loading each
//!   input of a row once for all three taps, in an array, gained nothing (forward 4 x 32, 3x3
//!   32->32 @16: 26.1 ms per tap, 28.1 ms with the row): llvmpipe kept the array in memory.
//! - The same in named vectors (register_span.wgsl, 3x3 stride 1, forward and grad_input):
//!   16->16 @32 n16 forward 38.8 -> 24.1 ms, grad_input 36.1 -> 24.7 ms; 32->32 @16 forward
//!   25.1 -> 18.5 ms, grad_input 24.6 -> 18.6 ms.
//! - grad_weight reading dy as vec4s of 4 pixels (conv2d_grad_weight_quads.wgsl): 32->32 @16
//!   22.4 -> 18.7 ms, 64->64 @8 23.3 -> 16.9 ms, 16->16 @32 n16 39.9 -> 35.7 ms.
//! - Tried, no gain: the forward x and input-gradient dy as aligned vec4s in load_span
//!   (forward 32->32 @16 18.1 ms either way: llvmpipe loads a vec4 a component at a time);
//!   8 x 16 blocks for 32 channels and more (32->32 @32 forward 72.8 -> 85.4 ms). With x
//!   replaced by constants, forward 32->32 @32 still takes 69.5 of its 72.8 ms, and without
//!   the broadcasts as long: the 128 accumulators' multiply-adds are the cost now.
//! - Measured, not done: the input gradient reading each lane's four weights from
//!   neighbouring addresses (as a transposed copy of the weights would allow) instead of four
//!   rows apart: 32->32 @32 82.3 -> 77.3 ms, 64->64 @16 77.9 -> 68.3 ms.

use super::{Conv2d, ConvPass, ConvVariant, Rejection, SMALL_GRID, fits_tile, require};
use crate::shapes::Conv2dShape;

/// The forward loads weights as vec4s of output channels; an `_n16` block only where the
/// pass has at most 16 channels.
pub(super) fn admits(v: ConvVariant, pass: ConvPass, shape: &Conv2dShape) -> Result<(), Rejection> {
    let vec4s = pass != ConvPass::Forward || shape.cout.is_multiple_of(4);
    require(vec4s, Rejection::ChannelsNotMultipleOf4 { channels: shape.cout })?;
    match v {
        ConvVariant::RegisterSubgroupN16 | ConvVariant::RegisterPlainN16 => fits_tile(v, pass, shape),
        _ => Ok(()),
    }
}

pub(super) fn module(v: ConvVariant, pass: ConvPass, shape: &Conv2dShape) -> &'static str {
    let subgroups = matches!(v, ConvVariant::RegisterSubgroup | ConvVariant::RegisterSubgroupN16);
    // dy read as vec4s of 4 pixels where planes are a multiple of 4 (conv2d_grad_weight_quads.wgsl).
    let quads = (shape.out_h * shape.out_w).is_multiple_of(4);
    match (pass, subgroups) {
        (ConvPass::Forward, true) => "conv2d_forward_register_subgroup",
        (ConvPass::Forward, false) => "conv2d_forward_register_plain",
        (ConvPass::GradInput, true) => "conv2d_grad_input_register_subgroup",
        (ConvPass::GradInput, false) => "conv2d_grad_input_register_plain",
        (ConvPass::GradWeight, true) if quads => "conv2d_grad_weight_quads_subgroup",
        (ConvPass::GradWeight, true) => "conv2d_grad_weight_register_subgroup",
        (ConvPass::GradWeight, false) => "conv2d_grad_weight_register_plain",
    }
}

/// Grids of (blocks of 4 or 8 pixels or taps, blocks of 32 or 16 channels, layers: the input
/// gradient's parity classes at stride 2, the weight gradient's splits), in workgroups of 64
/// invocations, or of 8 where 64 would leave many idle.
pub(super) fn launch(conv: &Conv2d, pass: ConvPass, constants: &mut Vec<(&'static str, f64)>) -> [u32; 3] {
    let variant = conv.variant(pass);
    let n16 = variant.tile_n() == 16;
    let block_rows = if n16 { 8 } else { 4 };
    let rows_and_layers = |c: &Conv2d| {
        let s = &c.shape;
        match pass {
            ConvPass::Forward => (s.batch * s.out_h * s.out_w.div_ceil(block_rows), 1),
            ConvPass::GradInput => {
                let class_cols = s.w.div_ceil(s.stride);
                (s.batch * s.h.div_ceil(s.stride) * class_cols.div_ceil(block_rows), s.stride * s.stride)
            }
            ConvPass::GradWeight => ((s.cin * s.ksize * s.ksize).div_ceil(block_rows), c.splits()),
        }
    };
    let (rows, layers) = rows_and_layers(conv);
    // Invocations past the last row still run the whole loop (for `columns`), so use
    // workgroups of 8 where 64 would leave many of them idle.
    let (planned_rows, planned_layers) = rows_and_layers(&conv.planned());
    let idle = |wg: usize| planned_rows.div_ceil(wg) * wg - planned_rows;
    let wg = if idle(64) * 16 > planned_rows || planned_rows * planned_layers < SMALL_GRID { 8 } else { 64 };
    constants.extend([("WG", wg as f64), ("N16", f64::from(u8::from(n16)))]);
    let n = pass.gemm_n(&conv.shape);
    [rows.div_ceil(wg) as u32, n.div_ceil(variant.tile_n()) as u32, layers as u32]
}
