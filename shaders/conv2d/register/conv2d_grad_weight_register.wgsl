// fills: register_pass
// requires: Act, Block, COL4S, accumulate_rows, columns, next_pixel, p, pixel_at, split_range,
// requires: store_partial, tap_values, taps_of
// provides: lane_vec4, run
// Gradient of a convolution with respect to its weights, register-blocked: each invocation
// computes ROWS consecutive weight rows (taps (ci, kh, kw)) for 4 COL4S output channels
// (4 x 32, or 8 x 16 with N16), reducing over the output pixels of one split (workgroup z).
// Splits write partial sums that reduce_splits.wgsl adds in a fixed order: more parallelism,
// shorter f32 sums, same bits every run.
//
// Variants: register_plain (lanes_plain.wgsl); register_subgroup (lanes_subgroup.wgsl) where
// an output plane is not a multiple of 4 pixels, else conv2d_grad_weight_quads.wgsl.
// Log (lavapipe, batch 128):
//   - Workgroups of 8 where 64 left most invocations idle past the last row (src/ops/
//     conv2d.rs, SMALL_GRID): 3x3 32->32 @32, 18.6 -> 33.3 GFLOP/s.
// Safety: dy indices are selected to 0 and the value masked past the last channel; the
// rest is in grad_weight_taps.wgsl.

@group(0) @binding(2) var<storage, read> dy: array<Act>;

// dy of output channel 4 col4 + c at one pixel, `base` = index of (img, channel 0, pixel).
fn lane_dy(base: u32, col4: u32, c: u32) -> f32 {
    let co = col4 * 4u + c;
    let ok = co < p.cout;
    return select(0.0, f32(dy[select(0u, base + co * p.oh * p.ow, ok)]), ok);
}

// dy for four output channels at one pixel.
fn lane_vec4(base: u32, col4: u32) -> vec4<f32> {
    // Built whole: DX12's FXC rejects a vector component written through a loop index
    // (src/gpu/fxc.rs).
    return vec4<f32>(lane_dy(base, col4, 0u), lane_dy(base, col4, 1u), lane_dy(base, col4, 2u), lane_dy(base, col4, 3u));
}

fn run(gx: u32, block: u32, split: u32, lane: u32) {
    let first_col4 = block * COL4S;
    let plane = p.oh * p.ow;
    var taps = taps_of(gx);
    let range = split_range(split);
    var px = pixel_at(range.x);
    var sums: Block;
    for (var pix = range.x; pix < range.y; pix++) {
        let dy_base = (px.img * p.y_channels + p.y_offset) * plane + px.row * p.ow + px.col;
        accumulate_rows(&sums, tap_values(&taps, px), columns(dy_base, first_col4, lane));
        px = next_pixel(px);
    }
    store_partial(sums, gx, split, first_col4);
}
