// Gradient of a convolution with respect to its input, register-blocked like the forward
// kernel: each invocation computes 4 neighbouring input pixels of one row for 32 input
// channels, reducing over (output channel, kh, kw). A tap contributes when the output pixel
// it comes from exists: (i + PAD - k) divisible by STRIDE and inside the output.

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;   // [cin][KS][KS][cout]
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// Four input channels of the weights at (kh, kw, co), `base` = (kh*KS + kw)*cout + co.
fn lane_vec4(base: u32, col4: u32) -> vec4<f32> {
    let stride = KS * KS * p.cout;
    var v = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) {
        let ci = col4 * 4u + c;
        let ok = ci < p.cin;
        v[c] = select(0.0, wt[select(0u, ci * stride + base, ok)], ok);
    }
    return v;
}

// dy at the output pixel whose tap lands on the input pixel (numerators are i + PAD - k).
fn load_dy(plane: u32, row_num: i32, col_num: i32) -> f32 {
    let orow = row_num / i32(STRIDE);
    let ocol = col_num / i32(STRIDE);
    let ok = row_num >= 0 && col_num >= 0
        && row_num % i32(STRIDE) == 0 && col_num % i32(STRIDE) == 0
        && orow < i32(p.oh) && ocol < i32(p.ow);
    return select(0.0, dy[select(0u, plane + u32(orow) * p.ow + u32(ocol), ok)], ok);
}

fn run(gx: u32, block: u32, _split: u32, lane: u32) {
    let quads = (p.w + 3u) / 4u;
    let total = p.batch * p.h * quads;
    let q = min(gx, total - 1u);
    let iw0 = (q % quads) * 4u;
    let ih = (q / quads) % p.h;
    let img = q / (quads * p.h);
    let first_col4 = block * 8u;

    var sums: Block;
    for (var co = 0u; co < p.cout; co++) {
        let plane = (img * p.y_channels + p.y_offset + co) * p.oh * p.ow;
        for (var kh = 0u; kh < KS; kh++) {
            let row_num = i32(ih + PAD) - i32(kh);
            for (var kw = 0u; kw < KS; kw++) {
                let col_num = i32(iw0 + PAD) - i32(kw);
                let a = vec4<f32>(
                    load_dy(plane, row_num, col_num),
                    load_dy(plane, row_num, col_num + 1),
                    load_dy(plane, row_num, col_num + 2),
                    load_dy(plane, row_num, col_num + 3),
                );
                let cols = columns((kh * KS + kw) * p.cout + co, first_col4, lane);
                accumulate(&sums, a, cols);
            }
        }
    }
    if (gx >= total) {
        return;
    }
    let acc = block_array(sums);
    for (var l = 0u; l < 8u; l++) {
        for (var c = 0u; c < 4u; c++) {
            let ci = (first_col4 + l) * 4u + c;
            for (var j = 0u; j < 4u; j++) {
                if (ci < p.cin && iw0 + j < p.w) {
                    let i = ((img * p.cin + ci) * p.h + ih) * p.w + iw0 + j;
                    dx[i] = acc[l][c][j] + select(0.0, dx[i], p.accumulate != 0u);
                }
            }
        }
    }
}
