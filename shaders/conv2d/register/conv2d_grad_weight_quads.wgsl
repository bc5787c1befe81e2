// fills: register_pass
// requires: Act, Block, COL4S, Pixel, Taps, accumulate_rows, next_pixel, p, pixel_at, split_range,
// requires: store_partial, tap_values, taps_of
// provides: run
// The weight gradient's register kernel (see conv2d_grad_weight_register.wgsl) for devices
// with subgroups and output planes of a multiple of 4 pixels: dy is read as vec4s of four
// neighbouring pixels of one channel. A lane loads four of them (4 channels x 4 pixels) and
// subgroupBroadcast shares them, so the 4 x 32 dy values of four pixels cost each lane four
// vec4 loads instead of sixteen scalar ones (llvmpipe pays per load, not per byte).
// Quads never straddle images (the plane is a multiple of 4) nor splits (PIXELS_PER_SPLIT is).
// Safety: dy indices are selected to 0 and the value masked past the last channel; the rest
// is in grad_weight_taps.wgsl.

@group(0) @binding(2) var<storage, read> dy: array<vec4<Act>>;

// dy of four output channels (matrix columns) at four pixels (rows); `base` = index of the
// pixels' quad of channel 0.
fn lane_quads(base: u32, col4: u32) -> mat4x4<f32> {
    // Built whole: DX12's FXC rejects a matrix column written through a loop index
    // (src/gpu/fxc.rs).
    return mat4x4<f32>(lane_quad(base, col4, 0u), lane_quad(base, col4, 1u), lane_quad(base, col4, 2u),
                       lane_quad(base, col4, 3u));
}

// Output channel 4 col4 + c's quad of pixels (zeros past the last channel).
fn lane_quad(base: u32, col4: u32, c: u32) -> vec4<f32> {
    let co = col4 * 4u + c;
    let ok = co < p.cout;
    return select(vec4<f32>(0.0), vec4<f32>(dy[select(0u, base + co * (p.oh * p.ow / 4u), ok)]), ok);
}

// Lane l's quads, transposed (row k: pixel k's four channels), for l < 8.
fn shared_quads(m: mat4x4<f32>) -> array<mat4x4<f32>, 8> {
    return array<mat4x4<f32>, 8>(
        transpose(mat4x4<f32>(subgroupBroadcast(m[0], 0u), subgroupBroadcast(m[1], 0u), subgroupBroadcast(m[2], 0u), subgroupBroadcast(m[3], 0u))),
        transpose(mat4x4<f32>(subgroupBroadcast(m[0], 1u), subgroupBroadcast(m[1], 1u), subgroupBroadcast(m[2], 1u), subgroupBroadcast(m[3], 1u))),
        transpose(mat4x4<f32>(subgroupBroadcast(m[0], 2u), subgroupBroadcast(m[1], 2u), subgroupBroadcast(m[2], 2u), subgroupBroadcast(m[3], 2u))),
        transpose(mat4x4<f32>(subgroupBroadcast(m[0], 3u), subgroupBroadcast(m[1], 3u), subgroupBroadcast(m[2], 3u), subgroupBroadcast(m[3], 3u))),
        transpose(mat4x4<f32>(subgroupBroadcast(m[0], 4u), subgroupBroadcast(m[1], 4u), subgroupBroadcast(m[2], 4u), subgroupBroadcast(m[3], 4u))),
        transpose(mat4x4<f32>(subgroupBroadcast(m[0], 5u), subgroupBroadcast(m[1], 5u), subgroupBroadcast(m[2], 5u), subgroupBroadcast(m[3], 5u))),
        transpose(mat4x4<f32>(subgroupBroadcast(m[0], 6u), subgroupBroadcast(m[1], 6u), subgroupBroadcast(m[2], 6u), subgroupBroadcast(m[3], 6u))),
        transpose(mat4x4<f32>(subgroupBroadcast(m[0], 7u), subgroupBroadcast(m[1], 7u), subgroupBroadcast(m[2], 7u), subgroupBroadcast(m[3], 7u))),
    );
}

// Pixel k of the quad: its taps times its dy (row k of every shared quad).
fn accumulate_pixel(sums: ptr<function, Block>, taps: ptr<function, Taps>, px: Pixel,
                    q: ptr<function, array<mat4x4<f32>, 8>>, k: u32) {
    let cols = array<vec4<f32>, 8>((*q)[0][k], (*q)[1][k], (*q)[2][k], (*q)[3][k],
                                   (*q)[4][k], (*q)[5][k], (*q)[6][k], (*q)[7][k]);
    accumulate_rows(sums, tap_values(taps, px), cols);
}

fn run(gx: u32, block: u32, split: u32, lane: u32) {
    let first_col4 = block * COL4S;
    let plane4 = p.oh * p.ow / 4u;
    var taps = taps_of(gx);
    let range = split_range(split);
    var px = pixel_at(range.x);
    var sums: Block;
    for (var pix = range.x; pix < range.y; pix += 4u) {
        let quad = (px.img * p.y_channels + p.y_offset) * plane4 + (px.row * p.ow + px.col) / 4u;
        var q = shared_quads(lane_quads(quad, first_col4 + lane % COL4S));
        // Four calls rather than a loop, so that k is a constant in each.
        accumulate_pixel(&sums, &taps, px, &q, 0u);
        px = next_pixel(px);
        accumulate_pixel(&sums, &taps, px, &q, 1u);
        px = next_pixel(px);
        accumulate_pixel(&sums, &taps, px, &q, 2u);
        px = next_pixel(px);
        accumulate_pixel(&sums, &taps, px, &q, 3u);
        px = next_pixel(px);
    }
    store_partial(sums, gx, split, first_col4);
}
