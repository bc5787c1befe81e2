// Gradient of a convolution with respect to its weights, register-blocked: each invocation
// computes ROWS consecutive weight rows (taps (ci, kh, kw)) for 4 COL4S output channels (4 x 32,
// or 8 x 16 with N16), reducing
// over the output pixels of one split (workgroup z). Splits write partial sums that
// reduce_splits.wgsl adds in a fixed order: more parallelism, shorter f32 sums, same bits
// every run.
//
// Variants: register_subgroup / register_plain (lanes_*.wgsl).
// Log (lavapipe, batch 128):
//   - Workgroups of 8 where 64 left most invocations idle past the last row (src/ops/
//     conv2d.rs, SMALL_GRID): 3x3 32->32 @32, 18.6 -> 33.3 GFLOP/s.
// Safety: the tap row is clamped to the last one; x and dy indices are selected to 0 and
// the value masked outside the input, the split or past the last channel; stores guarded.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;  // [split][cin*KS*KS][cout]

// dy for four output channels at one pixel, `base` = index of (img, channel 0, pixel) in dy.
fn lane_vec4(base: u32, col4: u32) -> vec4<f32> {
    let plane = p.oh * p.ow;
    var v = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) {
        let co = col4 * 4u + c;
        let ok = co < p.cout;
        v[c] = select(0.0, dy[select(0u, base + co * plane, ok)], ok);
    }
    return v;
}

fn run(gx: u32, block: u32, split: u32, lane: u32) {
    let taps = p.cin * KS * KS;
    let first_col4 = block * COL4S;
    // Where each of this invocation's taps reads, relative to the pixel's window.
    var plane_off: array<u32, ROWS_MAX>;
    var tap_r: array<i32, ROWS_MAX>;
    var tap_c: array<i32, ROWS_MAX>;
    var tap_ok: array<bool, ROWS_MAX>;
    for (var j = 0u; j < ROWS; j++) {
        let t = gx * ROWS + j;
        tap_ok[j] = t < taps;
        let tc = min(t, taps - 1u);
        plane_off[j] = (tc / (KS * KS)) * p.h * p.w;
        tap_r[j] = i32((tc / KS) % KS) - i32(PAD);
        tap_c[j] = i32(tc % KS) - i32(PAD);
    }

    let pixels_per_img = p.oh * p.ow;
    let total = p.batch * pixels_per_img;
    let begin = min(split * p.pixels_per_split, total);
    let end = min(begin + p.pixels_per_split, total);
    var img = begin / pixels_per_img;
    var orow = (begin % pixels_per_img) / p.ow;
    var ocol = begin % p.ow;
    var sums: Block;
    for (var pix = begin; pix < end; pix++) {
        let x_img = img * p.cin * p.h * p.w;
        let r0 = i32(orow * STRIDE);
        let c0 = i32(ocol * STRIDE);
        var a: array<f32, ROWS_MAX>;
        for (var j = 0u; j < ROWS; j++) {
            let r = r0 + tap_r[j];
            let c = c0 + tap_c[j];
            let ok = tap_ok[j] && r >= 0 && r < i32(p.h) && c >= 0 && c < i32(p.w);
            a[j] = select(0.0, x[select(0u, x_img + plane_off[j] + u32(r) * p.w + u32(c), ok)], ok);
        }
        let dy_base = (img * p.y_channels + p.y_offset) * pixels_per_img + orow * p.ow + ocol;
        accumulate_rows(&sums, a, columns(dy_base, first_col4, lane));
        ocol += 1u;
        if (ocol == p.ow) {
            ocol = 0u;
            orow += 1u;
            if (orow == p.oh) {
                orow = 0u;
                img += 1u;
            }
        }
    }
    let out = split * taps * p.cout;
    var acc = block_array(sums);
    for (var l = 0u; l < COL4S; l++) {
        for (var c = 0u; c < 4u; c++) {
            let co = (first_col4 + l) * 4u + c;
            for (var j = 0u; j < ROWS; j++) {
                let t = gx * ROWS + j;
                if (co < p.cout && t < taps) {
                    partial[out + t * p.cout + co] = block_value(&acc, j, l, c);
                }
            }
        }
    }
}
