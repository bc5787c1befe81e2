// Weight gradient of a convolution as an implicit GEMM for gemm_tiled.wgsl:
// M = taps (ci, kh, kw), N = output channels, K = output pixels (img, oh, ow), split along K
// into partial sums that reduce_splits.wgsl adds in order.
//
// Variants: tiled, tiled_n32 and tiled_n16 (gemm_tiled.wgsl with output tiles 64, 32 and 16
// channels wide). Checked against the CPU reference on every test shape; on lavapipe they run
// at 2-4.5 GFLOP/s (a CPU adapter wants register blocks), and they have not yet been timed on a
// real GPU. Safety: gemm_tiled.wgsl clamps the (m, k) and (k, n) it passes to load_a and
// load_b into the matrices and calls store_c only inside C; load_a masks the image padding.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;  // [split][cin*KS*KS][cout]

fn gemm_shape() -> vec4<u32> {
    return vec4<u32>(p.cin * KS * KS, p.cout, p.batch * p.oh * p.ow, p.pixels_per_split);
}

fn load_a(m: u32, k: u32) -> f32 {
    let ocol = k % p.ow;
    let orow = (k / p.ow) % p.oh;
    let img = k / (p.ow * p.oh);
    let ci = m / (KS * KS);
    let r = i32(orow * STRIDE + (m / KS) % KS) - i32(PAD);
    let c = i32(ocol * STRIDE + m % KS) - i32(PAD);
    let ok = r >= 0 && r < i32(p.h) && c >= 0 && c < i32(p.w);
    let i = ((img * p.cin + ci) * p.h + u32(r)) * p.w + u32(c);
    return select(0.0, x[select(0u, i, ok)], ok);
}

fn load_b(k: u32, n: u32) -> f32 {
    return dy[y_index(k / (p.ow * p.oh), n, (k / p.ow) % p.oh, k % p.ow)];
}

fn store_c(m: u32, n: u32, split: u32, v: f32) {
    partial[(split * p.cin * KS * KS + m) * p.cout + n] = v;
}
