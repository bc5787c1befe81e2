// provides: KS, PAD, STRIDE, outer, p, y_index
// Shape of one 2-D convolution, shared by its three passes and all their kernel variants.
// Layout (see src/layout.rs): activations NCHW; weights [cin][KS][KS][cout] ("row" k = tap,
// output channel fastest) so that four output channels load as one vec4.
//
// Each pass (forward, grad_input, grad_weight) has these variants, checked against the CPU
// reference and then chosen per shape by measuring (src/tuning/):
//   register_subgroup  conv2d_<pass>_register.wgsl + register_block.wgsl (+ register_span.wgsl
//                      for forward and grad_input) + lanes_subgroup.wgsl: CPU adapters; blocks
//                      of 4 x 32, or 8 x 16 (N16) as register_subgroup_n16. grad_weight:
//                      + grad_weight_taps.wgsl, and conv2d_grad_weight_quads.wgsl instead
//                      where planes are a multiple of 4 pixels
//   register_plain     the same with lanes_plain.wgsl: CPU adapters without subgroups; and
//                      register_plain_n16
//   tiled, tiled_n32,  conv2d_<pass>_gemm.wgsl + gemm_shape.wgsl + gemm_tiled.wgsl (GPUs;
//   tiled_n16          output tiles 64, 32, 16 wide); B from conv2d_forward_gemm_wt_vec4.wgsl
//                      (forward, cout a multiple of 4), else the pass's load_b
//                      (conv2d_forward_gemm_wt_scalar.wgsl for the forward) + gemm_b_columns.wgsl
//   direct             forward, and grad_input at stride 1, of at most 32 channels:
//                      conv2d_<pass>_direct.wgsl + gemm_shape.wgsl + conv2d_direct.wgsl
//                      (GPUs; no GEMM form, 8 x 8 or 16 x 8 pixel tiles)
//   winograd           forward and grad_input, 3x3 stride 1, F(2x2, 3x3):
//                      winograd_transforms.wgsl and winograd_gemm.wgsl (see
//                      winograd_shape.wgsl); CPU adapters with subgroups
//   winograd_4x4       F(4x4, 3x3), all three passes: winograd4_transforms.wgsl,
//                      winograd_gemm.wgsl, and winograd_grad_weight.wgsl for grad_weight
//
// Log (lavapipe, 2 cores, batch 128, `shakeshake bench ops`):
//   - Eight named mat4x4 accumulators (`Block`) instead of an array: about 2x; llvmpipe
//     kept the array in memory.
//   - Modules created without wgpu's injected bounds checks: 3.7x; with the accumulators,
//     forward 3x3 32->32 @32 went from 4.8 to 37.6 GFLOP/s.
//   - Blocks of 8 x 16 (N16) for passes of at most 16 channels: 3x3 16->16 @32, forward /
//     grad_input / grad_weight 10.7 / 10.5 / 11.8 -> 15.8 / 16.4 / 14.4 GFLOP/s. Loading each
//     input of a row once for all three taps, in an array, gained nothing (forward 4 x 32,
//     3x3 32->32 @16: 26.1 ms per tap, 28.1 ms with the row): llvmpipe kept the array in
//     memory.
//   - The same in named vectors (register_span.wgsl, 3x3 stride 1, forward and grad_input):
//     16->16 @32 n16 forward 38.8 -> 24.1 ms, grad_input 36.1 -> 24.7 ms; 32->32 @16 forward
//     25.1 -> 18.5 ms, grad_input 24.6 -> 18.6 ms.
//   - grad_weight reading dy as vec4s of 4 pixels (conv2d_grad_weight_quads.wgsl): 32->32 @16
//     22.4 -> 18.7 ms, 64->64 @8 23.3 -> 16.9 ms, 16->16 @32 n16 39.9 -> 35.7 ms.
//   - Tried, no gain: the forward x and input-gradient dy as aligned vec4s in load_span
//     (forward 32->32 @16 18.1 ms either way: llvmpipe loads a vec4 a component at a time);
//     8 x 16 blocks for 32 channels and more (32->32 @32 forward 72.8 -> 85.4 ms). With x
//     replaced by constants, forward 32->32 @32 still takes 69.5 of its 72.8 ms, and without
//     the broadcasts as long: the 128 accumulators' multiply-adds are the cost now.
//   - Winograd F(2x2, 3x3) (16 GEMMs blocked like register_subgroup, 4 tiles x 32 channels;
//     transforms 4 tiles an invocation as vec4s, the shape as override constants): 128->128
//     @8 forward 73.9 -> 54.3 ms, grad_input 76.9 -> 50.3 ms; 64->64 @16 about even; 32->32
//     @32 about even or slower (the transforms take 40 of its 95 ms), so the tuner keeps the
//     direct kernels there. Its GEMM does 4/9 of the multiply-adds at about 0.65-0.8 of the
//     direct kernels' rate per multiply-add. V as [xi][t/4][k][4] (the GEMM reads it in
//     order) rather than [xi][k][t]: GEMM 10-15 % faster, once the transform took channels
//     fastest across invocations so that its writes stay neighbouring.
//   - Winograd F(4x4, 3x3) (winograd_4x4: 36 GEMMs, 6 x 6 transforms; errors 1e-6 of scale,
//     F(2x2) 1e-7), and the weight gradient by its transposed transforms. Another machine
//     (AMD EPYC, 2 cores; slower than the Xeon above), side by side: 3x3 32->32 @32 forward
//     winograd 267 ms, winograd_4x4 180 ms, register_subgroup 287 ms; grad_weight
//     register_subgroup -> winograd_4x4: 16->32 @32 183 -> 148 ms, 32->32 @32 331 -> 183,
//     64->64 @16 331 -> 132, 128->128 @8 331 -> 113 (the 3->16 stem stays direct: 37 vs 93).
//   - winograd_4x4's input transform loading the 18 inputs 4 side-by-side tiles share in a
//     patch row, not 24 (planes of 16 and 32 pixels; AMD EPYC, min of 3 alternating runs):
//     16->32 @32 forward / grad_input / grad_weight 127.5 / 160.5 / 155.4 -> 120.1 / 148.8 /
//     151.2 ms, 32->32 @32 187.8 / 185.4 / 191.8 -> 176.4 / 175.5 / 178.8, 64->64 @16 132.6 /
//     129.4 / 139.2 -> 127.7 / 125.4 / 132.6; 128->128 @8 (2 tiles a row) unchanged. The
//     same values: 10 steps of 8 2x16d on the same choices end on the same weights, bit for bit.
//   - The batch read from p rather than fixed per pipeline (tiled, direct, Winograd): a first
//     bench train of 8 2x4d on lavapipe compiled 245 pipelines instead of 308, since the
//     images a candidate is checked on, the 16 it is timed on and the training batch now
//     share them. 3x3 64->64 @16, old / new, two alternating runs each: within noise (winograd_4x4
//     forward 41.5, 45.2 / 42.3, 43.8 ms; grad_weight 36.3, 38.1 / 38.4, 40.8; tiled alike).
//   - Measured, not done: the input gradient reading each lane's four weights from
//     neighbouring addresses (as a transposed copy of the weights would allow) instead of
//     four rows apart: 32->32 @32 82.3 -> 77.3 ms, 64->64 @16 77.9 -> 68.3 ms.
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

// Index of y[img][channel][row][col] inside the wider y tensor.
fn y_index(img: u32, channel: u32, row: u32, col: u32) -> u32 {
    return ((img * p.y_channels + p.y_offset + channel) * p.oh + row) * p.ow + col;
}
