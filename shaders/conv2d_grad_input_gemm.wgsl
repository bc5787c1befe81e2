// Input gradient of a convolution as an implicit GEMM for gemm_tiled.wgsl:
// M = input pixels (img, ih, iw), N = input channels, K = (co, kh, kw).
//
// Variants: tiled, tiled_n32 and tiled_n16 (gemm_tiled.wgsl with output tiles 64, 32 and 16
// channels wide). Checked against the CPU reference on every test shape; on lavapipe they run
// at 2-4.5 GFLOP/s (a CPU adapter wants register blocks), and they have not yet been timed on a
// real GPU. Safety: gemm_tiled.wgsl clamps the (m, k) and (k, n) it passes to load_a and
// load_b into the matrices and calls store_c only inside C; load_a masks the image padding.

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;   // [cin][KS][KS][cout]
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

fn gemm_shape() -> vec4<u32> {
    let k = p.cout * KS * KS;
    return vec4<u32>(p.batch * p.h * p.w, p.cin, k, k);
}

fn load_a(m: u32, k: u32) -> f32 {
    let icol = m % p.w;
    let irow = (m / p.w) % p.h;
    let img = m / (p.w * p.h);
    let co = k / (KS * KS);
    let row_num = i32(irow + PAD) - i32((k / KS) % KS);
    let col_num = i32(icol + PAD) - i32(k % KS);
    let orow = row_num / i32(STRIDE);
    let ocol = col_num / i32(STRIDE);
    let ok = row_num >= 0 && col_num >= 0
        && row_num % i32(STRIDE) == 0 && col_num % i32(STRIDE) == 0
        && orow < i32(p.oh) && ocol < i32(p.ow);
    let i = y_index(img, co, u32(orow), u32(ocol));
    return select(0.0, dy[select(0u, i, ok)], ok);
}

fn load_b(k: u32, n: u32) -> f32 {
    // k = (co, tap); weights are [ci][tap][co].
    let co = k / (KS * KS);
    let tap = k % (KS * KS);
    return wt[(n * KS * KS + tap) * p.cout + co];
}

fn store_c(m: u32, n: u32, _split: u32, v: f32) {
    let icol = m % p.w;
    let irow = (m / p.w) % p.h;
    let img = m / (p.w * p.h);
    let i = ((img * p.cin + n) * p.h + irow) * p.w + icol;
    // A branch, not select (which would read dx even when overwriting it).
    if (p.accumulate != 0u) {
        dx[i] += v;
    } else {
        dx[i] = v;
    }
}
