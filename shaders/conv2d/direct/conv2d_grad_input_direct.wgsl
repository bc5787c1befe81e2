// fills: direct_pass
// requires: Act, CIN, COUT, H, KS, OH, OW, PAD, W, p
// provides: conv_pad, in_channels, load_pixel, out_channels, out_cols, out_rows, store_out,
// provides: weight_quad
// The input gradient at stride 1 for conv2d_direct.wgsl: a convolution of the dy window
// (COUT x OH x OW) with the weights flipped and their channels swapped, padded KS - 1 - PAD,
// into dx (CIN x H x W), overwritten or (accumulate) added to.
// Safety: loads are selected to index 0 and masked outside dy and past the channels.

@group(0) @binding(1) var<storage, read> dy: array<Act>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;   // [cin*KS*KS][cout]
@group(0) @binding(3) var<storage, read_write> dx: array<Act>;

// The convolution as conv2d_direct.wgsl sees it: its input channels, its output's shape.
fn in_channels() -> u32 {
    return COUT;
}
fn out_channels() -> u32 {
    return CIN;
}
fn out_rows() -> u32 {
    return H;
}
fn out_cols() -> u32 {
    return W;
}

// Negative for the shortcut's shifted 1x1 (KS 1, PAD 1): dx takes dy from one pixel on.
fn conv_pad() -> i32 {
    return i32(KS) - 1 - i32(PAD);
}

fn load_pixel(img: u32, co: u32, r: i32, c: i32) -> f32 {
    let ok = co < COUT && r >= 0 && r < i32(OH) && c >= 0 && c < i32(OW);
    let i = ((img * p.y_channels + p.y_offset + co) * OH + u32(r)) * OW + u32(c);
    return select(0.0, f32(dy[select(0u, i, ok)]), ok);
}

// Input channels ci..ci+3 (this pass's outputs) of output channel co at tap `tap` of the
// flipped kernel.
fn weight_quad(co: u32, tap: u32, ci: u32) -> vec4<f32> {
    // Built whole: DX12's FXC rejects a vector component written through a loop index
    // (src/gpu/fxc.rs).
    return vec4<f32>(weight_at(co, tap, ci), weight_at(co, tap, ci + 1u), weight_at(co, tap, ci + 2u),
                     weight_at(co, tap, ci + 3u));
}

fn weight_at(co: u32, tap: u32, ci: u32) -> f32 {
    let ok = co < COUT && ci < CIN;
    return select(0.0, wt[select(0u, (ci * KS * KS + KS * KS - 1u - tap) * COUT + co, ok)], ok);
}

fn store_out(img: u32, ci: u32, r: u32, c: u32, v: f32) {
    let i = ((img * CIN + ci) * H + r) * W + c;
    // A branch, not select (which would read dx even when overwriting it).
    if (p.accumulate != 0u) {
        dx[i] = Act(f32(dx[i]) + v);
    } else {
        dx[i] = Act(v);
    }
}
