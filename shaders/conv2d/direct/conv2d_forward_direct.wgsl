// fills: direct_pass
// requires: Act, CIN, COUT, H, KS, OH, OW, PAD, W, y_index
// provides: conv_pad, in_channels, load_pixel, out_channels, out_cols, out_rows, store_out,
// provides: weight_quad
// The forward pass for conv2d_direct.wgsl: x (CIN x H x W) to the y window (COUT x OH x OW).
// Safety: loads are selected to index 0 and masked outside x and past the channels.

@group(0) @binding(1) var<storage, read> x: array<Act>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;   // [cin*KS*KS][cout]
@group(0) @binding(3) var<storage, read_write> y: array<Act>;

// The convolution as conv2d_direct.wgsl sees it: its input channels, its output's shape.
fn in_channels() -> u32 {
    return CIN;
}
fn out_channels() -> u32 {
    return COUT;
}
fn out_rows() -> u32 {
    return OH;
}
fn out_cols() -> u32 {
    return OW;
}

fn conv_pad() -> i32 {
    return i32(PAD);
}

fn load_pixel(img: u32, ci: u32, r: i32, c: i32) -> f32 {
    let ok = ci < CIN && r >= 0 && r < i32(H) && c >= 0 && c < i32(W);
    return select(0.0, f32(x[select(0u, ((img * CIN + ci) * H + u32(r)) * W + u32(c), ok)]), ok);
}

// Output channels o..o+3 of input channel ci at tap `tap`.
fn weight_quad(ci: u32, tap: u32, o: u32) -> vec4<f32> {
    // Built whole: DX12's FXC rejects a vector component written through a loop index
    // (src/gpu/fxc.rs).
    return vec4<f32>(weight_at(ci, tap, o), weight_at(ci, tap, o + 1u), weight_at(ci, tap, o + 2u),
                     weight_at(ci, tap, o + 3u));
}

fn weight_at(ci: u32, tap: u32, o: u32) -> f32 {
    let ok = ci < CIN && o < COUT;
    return select(0.0, wt[select(0u, (ci * KS * KS + tap) * COUT + o, ok)], ok);
}

fn store_out(img: u32, o: u32, r: u32, c: u32, v: f32) {
    y[y_index(img, o, r, c)] = Act(v);
}
