// requires: Act, Block, COL4S, KS, PAD, ROWS, ROWS_MAX, STRIDE, block_array, block_value, p
// provides: Pixel, Taps, next_pixel, pixel_at, split_range, store_partial, tap_values, taps_of
// What the weight-gradient register kernels share: an invocation's taps, the output pixels
// of a split, and the stores of its partial sums. conv2d_grad_weight_register.wgsl reads dy
// one pixel at a time; conv2d_grad_weight_quads.wgsl four neighbouring pixels at once.
//
// Safety: the tap row is clamped to the last one; x indices are selected to 0 and the value
// masked outside the input or past the last tap; stores are guarded.

@group(0) @binding(1) var<storage, read> x: array<Act>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;  // [split][cin*KS*KS][cout]

// Where an invocation's ROWS taps read, relative to an output pixel's window.
struct Taps {
    plane_off: array<u32, ROWS_MAX>,
    r: array<i32, ROWS_MAX>,
    c: array<i32, ROWS_MAX>,
    ok: array<bool, ROWS_MAX>,
}

fn taps_of(gx: u32) -> Taps {
    let taps = p.cin * KS * KS;
    var t: Taps;
    for (var j = 0u; j < ROWS; j++) {
        let tap = gx * ROWS + j;
        t.ok[j] = tap < taps;
        let tc = min(tap, taps - 1u);
        t.plane_off[j] = (tc / (KS * KS)) * p.h * p.w;
        t.r[j] = i32((tc / KS) % KS) - i32(PAD);
        t.c[j] = i32(tc % KS) - i32(PAD);
    }
    return t;
}

struct Pixel {
    img: u32,
    row: u32,
    col: u32,
}

// The output pixels [begin, end) that `split` reduces, counted over the whole batch.
fn split_range(split: u32) -> vec2<u32> {
    let total = p.batch * p.oh * p.ow;
    let begin = min(split * p.pixels_per_split, total);
    return vec2<u32>(begin, min(begin + p.pixels_per_split, total));
}

fn pixel_at(i: u32) -> Pixel {
    let plane = p.oh * p.ow;
    return Pixel(i / plane, (i % plane) / p.ow, i % p.ow);
}

fn next_pixel(px: Pixel) -> Pixel {
    var n = px;
    n.col += 1u;
    if (n.col == p.ow) {
        n.col = 0u;
        n.row += 1u;
        if (n.row == p.oh) {
            n.row = 0u;
            n.img += 1u;
        }
    }
    return n;
}

// x at the taps of output pixel `px`.
fn tap_values(t: ptr<function, Taps>, px: Pixel) -> array<f32, ROWS_MAX> {
    let x_img = px.img * p.cin * p.h * p.w;
    let r0 = i32(px.row * STRIDE);
    let c0 = i32(px.col * STRIDE);
    var a: array<f32, ROWS_MAX>;
    for (var j = 0u; j < ROWS; j++) {
        let r = r0 + (*t).r[j];
        let c = c0 + (*t).c[j];
        let ok = (*t).ok[j] && r >= 0 && r < i32(p.h) && c >= 0 && c < i32(p.w);
        a[j] = select(0.0, f32(x[select(0u, x_img + (*t).plane_off[j] + u32(r) * p.w + u32(c), ok)]), ok);
    }
    return a;
}

fn store_partial(sums: Block, gx: u32, split: u32, first_col4: u32) {
    let taps = p.cin * KS * KS;
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
