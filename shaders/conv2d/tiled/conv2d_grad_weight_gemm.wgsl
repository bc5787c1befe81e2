// fills: gemm_pass, gemm_b
// requires: Act, CIN, COUT, H, KS, OH, OW, PAD, STRIDE, W, p, y_index
// provides: Row, a_row, gemm_shape, load_a, load_b, store_c
// Weight gradient of a convolution as an implicit GEMM for gemm_tiled.wgsl:
// M = taps (ci, kh, kw), N = output channels, K = output pixels (img, oh, ow), split along K
// into partial sums that reduce_splits.wgsl adds in order.
//
// Variants: tiled, tiled_n32 and tiled_n16 (gemm_tiled.wgsl with output tiles 64, 32 and 16
// channels wide). Checked against the CPU reference on every test shape. Safety:
// gemm_tiled.wgsl clamps the m and k it passes in into the matrices (load_b_quad masks the
// n past N) and calls store_c only inside C; load_a masks the image padding.

@group(0) @binding(1) var<storage, read> x: array<Act>;
@group(0) @binding(2) var<storage, read> dy: array<Act>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;  // [split][cin*KS*KS][cout]

fn gemm_shape() -> vec4<u32> {
    return vec4<u32>(CIN * KS * KS, COUT, p.batch * OH * OW, p.pixels_per_split);
}

// Tap m: where its input channel's plane starts in an image, and its kernel row and column
// less the padding.
struct Row {
    plane: u32,
    dr: i32,
    dc: i32,
}

fn a_row(m: u32) -> Row {
    return Row(m / (KS * KS) * H * W, i32((m / KS) % KS) - i32(PAD), i32(m % KS) - i32(PAD));
}

fn load_a(row: Row, k: u32) -> f32 {
    let img = k / (OW * OH);
    let r = i32((k / OW) % OH * STRIDE) + row.dr;
    let c = i32(k % OW * STRIDE) + row.dc;
    let ok = r >= 0 && r < i32(H) && c >= 0 && c < i32(W);
    let i = img * CIN * H * W + row.plane + u32(r) * W + u32(c);
    return select(0.0, f32(x[select(0u, i, ok)]), ok);
}

fn load_b(k: u32, n: u32) -> f32 {
    return f32(dy[y_index(k / (OW * OH), n, (k / OW) % OH, k % OW)]);
}

fn store_c(m: u32, n: u32, split: u32, v: f32) {
    partial[(split * CIN * KS * KS + m) * COUT + n] = v;
}
