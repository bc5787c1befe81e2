// requires: outer
// provides: Block, COL4S, N16, ROWS, ROWS_MAX, accumulate, accumulate_rows, block_array, block_value
// The register kernels' accumulator block (the conv2d_<pass>_register_*,
// conv2d_grad_weight_quads_subgroup and Winograd GEMM modules: see `// requires:` lines).
//
// A block is ROWS x (4 COL4S) accumulators: ROWS pixels (or taps) x COL4S vec4s of channels,
// either 4 x 32 or, with N16 (variants register_*_n16, for passes of at most 16 channels,
// where a 32-wide block would idle half its multiply-adds), 8 x 16. Both are 128 floats in
// eight named mat4x4s rather than an array: the shader compilers we measured (llvmpipe) kept
// an array in memory and ran 2x slower. Every branch on N16 is folded away when the pipeline
// is built.
override N16: bool = false;
const ROWS_MAX: u32 = 8u;
override ROWS: u32 = select(4u, 8u, N16);
override COL4S: u32 = select(8u, 4u, N16);

struct Block {
    m0: mat4x4<f32>, m1: mat4x4<f32>, m2: mat4x4<f32>, m3: mat4x4<f32>,
    m4: mat4x4<f32>, m5: mat4x4<f32>, m6: mat4x4<f32>, m7: mat4x4<f32>,
}

// acc += (lo, hi) x c: rows 0-3 and (with N16) 4-7, times COL4S vec4s of columns (the rest of
// c is ignored).
fn accumulate(acc: ptr<function, Block>, lo: vec4<f32>, hi: vec4<f32>, c: array<vec4<f32>, 8>) {
    if (N16) {
        (*acc).m0 += outer(lo, c[0]); (*acc).m1 += outer(lo, c[1]);
        (*acc).m2 += outer(lo, c[2]); (*acc).m3 += outer(lo, c[3]);
        (*acc).m4 += outer(hi, c[0]); (*acc).m5 += outer(hi, c[1]);
        (*acc).m6 += outer(hi, c[2]); (*acc).m7 += outer(hi, c[3]);
    } else {
        (*acc).m0 += outer(lo, c[0]); (*acc).m1 += outer(lo, c[1]);
        (*acc).m2 += outer(lo, c[2]); (*acc).m3 += outer(lo, c[3]);
        (*acc).m4 += outer(lo, c[4]); (*acc).m5 += outer(lo, c[5]);
        (*acc).m6 += outer(lo, c[6]); (*acc).m7 += outer(lo, c[7]);
    }
}

// acc += a (ROWS rows) x c.
fn accumulate_rows(acc: ptr<function, Block>, a: array<f32, ROWS_MAX>, c: array<vec4<f32>, 8>) {
    accumulate(acc, vec4<f32>(a[0], a[1], a[2], a[3]), vec4<f32>(a[4], a[5], a[6], a[7]), c);
}

// The accumulators as an array, for the final stores: row j, column 4 l + c is
// block_value(acc, j, l, c).
fn block_array(acc: Block) -> array<mat4x4<f32>, 8> {
    return array<mat4x4<f32>, 8>(acc.m0, acc.m1, acc.m2, acc.m3, acc.m4, acc.m5, acc.m6, acc.m7);
}

fn block_value(acc: ptr<function, array<mat4x4<f32>, 8>>, j: u32, l: u32, c: u32) -> f32 {
    return (*acc)[(j / 4u) * COL4S + l][c][j % 4u];
}
