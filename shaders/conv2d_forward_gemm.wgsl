// Forward convolution as an implicit GEMM for gemm_tiled.wgsl:
// M = output pixels (img, oh, ow), N = output channels, K = taps (ci, kh, kw).
//
// Variants: tiled, tiled_n32 and tiled_n16 (gemm_tiled.wgsl with output tiles 64, 32 and 16
// channels wide). Checked against the CPU reference on every test shape; on lavapipe they run
// at 2-4.5 GFLOP/s (a CPU adapter wants register blocks), and they have not yet been timed on a
// real GPU. Safety: gemm_tiled.wgsl clamps the (m, k) and (k, n) it passes to load_a and
// load_b into the matrices and calls store_c only inside C; load_a masks the image padding.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;   // [cin*KS*KS][cout]
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn gemm_shape() -> vec4<u32> {
    let k = p.cin * KS * KS;
    return vec4<u32>(p.batch * p.oh * p.ow, p.cout, k, k);
}

fn load_a(m: u32, k: u32) -> f32 {
    let ocol = m % p.ow;
    let orow = (m / p.ow) % p.oh;
    let img = m / (p.ow * p.oh);
    let ci = k / (KS * KS);
    let r = i32(orow * STRIDE + (k / KS) % KS) - i32(PAD);
    let c = i32(ocol * STRIDE + k % KS) - i32(PAD);
    let ok = r >= 0 && r < i32(p.h) && c >= 0 && c < i32(p.w);
    let i = ((img * p.cin + ci) * p.h + u32(r)) * p.w + u32(c);
    return select(0.0, x[select(0u, i, ok)], ok);
}

fn load_b(k: u32, n: u32) -> f32 {
    return wt[k * p.cout + n];
}

fn store_c(m: u32, n: u32, _split: u32, v: f32) {
    y[y_index(m / (p.ow * p.oh), n, (m / p.ow) % p.oh, m % p.ow)] = v;
}
