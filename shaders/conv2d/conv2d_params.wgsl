// provides: KS, PAD, STRIDE, outer, p, y_index
// Shape of one 2-D convolution, shared by its three passes and all their kernel variants.
// Layout (see src/layout.rs): activations NCHW; weights [cin][KS][KS][cout] ("row" k = tap,
// output channel fastest) so that four output channels load as one vec4.
//
// The variants come in four families, each described, with its log of measured changes, at
// the top of its file: src/ops/conv2d/register.rs (CPU adapters), tiled.rs and direct.rs
// (GPUs), winograd.rs. Which files a module joins: src/gpu/shaders.rs (MODULES), or
// `shakeshake shader`; what each file takes from the others: its `// requires:` lines.
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
