// fills: gemm_pass, gemm_b
// requires: Act, CIN, COUT, H, KS, OH, OW, PAD, STRIDE, W, p, y_index
// provides: Row, a_row, gemm_shape, load_a, load_b, store_c
// Input gradient of a convolution as an implicit GEMM for gemm_tiled.wgsl:
// M = input pixels (img, ih, iw), N = input channels, K = (co, kh, kw).
//
// Variants: tiled, tiled_n32 and tiled_n16 (gemm_tiled.wgsl with output tiles 64, 32 and 16
// channels wide). Checked against the CPU reference on every test shape. Safety:
// gemm_tiled.wgsl clamps the m and k it passes in into the matrices (load_b_quad masks the
// n past N) and calls store_c only inside C; load_a masks taps that reach no output pixel.

@group(0) @binding(1) var<storage, read> dy: array<Act>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;   // [cin][KS][KS][cout]
@group(0) @binding(3) var<storage, read_write> dx: array<Act>;

fn gemm_shape() -> vec4<u32> {
    let k = COUT * KS * KS;
    return vec4<u32>(p.batch * H * W, CIN, k, k);
}

// Input pixel m: its image, and its row and column plus the padding.
struct Row {
    img: u32,
    row: i32,
    col: i32,
}

fn a_row(m: u32) -> Row {
    return Row(m / (W * H), i32((m / W) % H + PAD), i32(m % W + PAD));
}

fn load_a(row: Row, k: u32) -> f32 {
    let co = k / (KS * KS);
    let row_num = row.row - i32((k / KS) % KS);
    let col_num = row.col - i32(k % KS);
    let orow = row_num / i32(STRIDE);
    let ocol = col_num / i32(STRIDE);
    let ok = row_num >= 0 && col_num >= 0
        && row_num % i32(STRIDE) == 0 && col_num % i32(STRIDE) == 0
        && orow < i32(OH) && ocol < i32(OW);
    let i = y_index(row.img, co, u32(orow), u32(ocol));
    return select(0.0, f32(dy[select(0u, i, ok)]), ok);
}

fn load_b(k: u32, n: u32) -> f32 {
    // k = (co, tap); weights are [ci][tap][co].
    let co = k / (KS * KS);
    let tap = k % (KS * KS);
    return wt[(n * KS * KS + tap) * COUT + co];
}

fn store_c(m: u32, n: u32, _split: u32, v: f32) {
    let i = ((m / (W * H) * CIN + n) * H + (m / W) % H) * W + m % W;
    // A branch, not select (which would read dx even when overwriting it).
    if (p.accumulate != 0u) {
        dx[i] = Act(f32(dx[i]) + v);
    } else {
        dx[i] = Act(v);
    }
}
