// fills: gemm_pass
// requires: Act, CIN, COUT, H, KS, OH, OW, PAD, STRIDE, W, p, y_index
// provides: Row, a_row, gemm_shape, load_a, store_c
// Forward convolution as an implicit GEMM for gemm_tiled.wgsl:
// M = output pixels (img, oh, ow), N = output channels, K = taps (ci, kh, kw). B, the
// weights [cin*KS*KS][cout], comes from conv2d_forward_gemm_wt_vec4.wgsl (cout a multiple of
// 4: vec4 loads) or conv2d_forward_gemm_wt_scalar.wgsl with gemm_b_columns.wgsl.
//
// Variants: tiled, tiled_n32 and tiled_n16 (gemm_tiled.wgsl with output tiles 64, 32 and 16
// channels wide). Checked against the CPU reference on every test shape. Safety:
// gemm_tiled.wgsl clamps the m and k it passes in into the matrices (load_b_quad masks the
// n past N) and calls store_c only inside C; load_a masks the image padding.

@group(0) @binding(1) var<storage, read> x: array<Act>;
@group(0) @binding(3) var<storage, read_write> y: array<Act>;

fn gemm_shape() -> vec4<u32> {
    let k = CIN * KS * KS;
    return vec4<u32>(p.batch * OH * OW, COUT, k, k);
}

// Output pixel m: where its image starts in x, and the input row and column of its
// window's first tap.
struct Row {
    image: u32,
    r0: i32,
    c0: i32,
}

fn a_row(m: u32) -> Row {
    let ocol = m % OW;
    let orow = (m / OW) % OH;
    return Row(m / (OW * OH) * CIN * H * W, i32(orow * STRIDE) - i32(PAD), i32(ocol * STRIDE) - i32(PAD));
}

fn load_a(row: Row, k: u32) -> f32 {
    let ci = k / (KS * KS);
    let r = row.r0 + i32((k / KS) % KS);
    let c = row.c0 + i32(k % KS);
    let ok = r >= 0 && r < i32(H) && c >= 0 && c < i32(W);
    return select(0.0, f32(x[select(0u, row.image + (ci * H + u32(r)) * W + u32(c), ok)]), ok);
}

fn store_c(m: u32, n: u32, _split: u32, v: f32) {
    y[y_index(m / (OW * OH), n, (m / OW) % OH, m % OW)] = Act(v);
}
