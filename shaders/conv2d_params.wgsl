// Shape of one 2-D convolution, shared by its three passes and all their kernel variants.
// Layout (see src/layout.rs): activations NCHW; weights [cin][KS][KS][cout] ("row" k = tap,
// output channel fastest) so that four output channels load as one vec4.
//
// Each pass (forward, grad_input, grad_weight) has these variants, checked against the CPU
// reference and then chosen per shape by measuring (src/tuning/):
//   register_subgroup  conv2d_<pass>_register.wgsl + lanes_subgroup.wgsl  (CPU adapters;
//                      blocks of 4 x 32, and 8 x 16 with N16 as register_subgroup_n16)
//   register_plain     conv2d_<pass>_register.wgsl + lanes_plain.wgsl     (CPU, no subgroups;
//                      likewise register_plain_n16)
//   tiled, tiled_n32,  conv2d_<pass>_gemm.wgsl + gemm_tiled.wgsl          (GPUs; output tiles
//   tiled_n16                                                              64, 32, 16 wide)
//
// Log (lavapipe, 2 cores, batch 128, `shakeshake bench ops`):
//   - Eight named mat4x4 accumulators (`Block`) instead of an array: about 2x; llvmpipe
//     kept the array in memory.
//   - Modules created without wgpu's injected bounds checks: 3.7x; with the accumulators,
//     forward 3x3 32->32 @32 went from 4.8 to 37.6 GFLOP/s.
//   - Blocks of 8 x 16 (N16) for passes of at most 16 channels: 3x3 16->16 @32, forward /
//     grad_input / grad_weight 10.7 / 10.5 / 11.8 -> 15.8 / 16.4 / 14.4 GFLOP/s. Loading each
//     input of a row once for all three taps (instead of once per tap) was tried and gained
//     nothing (forward 4 x 32, 3x3 32->32 @16: 26.1 ms per tap, 28.1 ms with the row).
//
// Safety: these modules are created without wgpu's injected bounds checks (see
// `checks_own_bounds` in src/gpu/shaders.rs), so every index into a storage buffer must be
// in range by construction: clamp it with min() or select() it to 0 and mask the value,
// never rely on the driver. src/checks/conv2d.rs runs every variant on edge shapes (batch 1,
// odd sizes, stride 2, channel counts off the blocks) to hold them to it.

override KS: u32 = 3u;      // kernel size (square)
override STRIDE: u32 = 1u;
override PAD: u32 = 1u;     // zero padding before the first row and column

struct ConvParams {
    batch: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    oh: u32,
    ow: u32,
    // The output (forward) or its gradient (backward) is a window of channels
    // [y_offset, y_offset + cout) in a tensor of y_channels: the projection shortcut's two
    // halves live in one concatenated buffer.
    y_channels: u32,
    y_offset: u32,
    // grad_input: add into dx instead of overwriting it (both shortcut paths read one input).
    accumulate: u32,
    // grad_weight: output pixels reduced by one split (workgroup z).
    pixels_per_split: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: ConvParams;

fn outer(a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(a * b.x, a * b.y, a * b.z, a * b.w);
}

// A register kernel's block of ROWS x (4 COL4S) accumulators: ROWS pixels (or taps) x COL4S
// vec4s of channels, either 4 x 32 or, with N16 (variants register_*_n16, for passes of at
// most 16 channels, where a 32-wide block would idle half its multiply-adds), 8 x 16. Both
// are 128 floats in eight named mat4x4s rather than an array: the shader compilers we
// measured (llvmpipe) kept an array in memory and ran 2x slower. Every branch on N16 is
// folded away when the pipeline is built.
override N16: bool = false;
const ROWS_MAX: u32 = 8u;
override ROWS: u32 = select(4u, 8u, N16);
override COL4S: u32 = select(8u, 4u, N16);

struct Block {
    m0: mat4x4<f32>, m1: mat4x4<f32>, m2: mat4x4<f32>, m3: mat4x4<f32>,
    m4: mat4x4<f32>, m5: mat4x4<f32>, m6: mat4x4<f32>, m7: mat4x4<f32>,
}

// acc += a (ROWS rows) x c (COL4S vec4s of columns; the rest are ignored).
fn accumulate(acc: ptr<function, Block>, a: array<f32, ROWS_MAX>, c: array<vec4<f32>, 8>) {
    let lo = vec4<f32>(a[0], a[1], a[2], a[3]);
    if (N16) {
        let hi = vec4<f32>(a[4], a[5], a[6], a[7]);
        (*acc).m0 += outer(lo, c[0]); (*acc).m1 += outer(lo, c[1]);
        (*acc).m2 += outer(lo, c[2]); (*acc).m3 += outer(lo, c[3]);
        (*acc).m4 += outer(hi, c[0]); (*acc).m5 += outer(hi, c[1]);
        (*acc).m6 += outer(hi, c[2]); (*acc).m7 += outer(hi, c[3]);
    } else {
        (*acc).m0 += outer(lo, c[0]); (*acc).m1 += outer(lo, c[1]);
        (*acc).m2 += outer(lo, c[2]); (*acc).m3 += outer(lo, c[3]);
        (*acc).m4 += outer(lo, c[4]); (*acc).m5 += outer(lo, c[5]);
        (*acc).m6 += outer(lo, c[6]); (*acc).m7 += outer(lo, c[7]);
    }
}

// The accumulators as an array, for the final stores: row j, column 4 l + c is
// block_value(acc, j, l, c).
fn block_array(acc: Block) -> array<mat4x4<f32>, 8> {
    return array<mat4x4<f32>, 8>(acc.m0, acc.m1, acc.m2, acc.m3, acc.m4, acc.m5, acc.m6, acc.m7);
}

fn block_value(acc: ptr<function, array<mat4x4<f32>, 8>>, j: u32, l: u32, c: u32) -> f32 {
    return (*acc)[(j / 4u) * COL4S + l][c][j % 4u];
}

// Index of y[img][channel][row][col] inside the wider y tensor.
fn y_index(img: u32, channel: u32, row: u32, col: u32) -> u32 {
    return ((img * p.y_channels + p.y_offset + channel) * p.oh + row) * p.ow + col;
}
