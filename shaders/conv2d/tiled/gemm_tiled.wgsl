// requires: Row, a_row, gemm_shape, load_a, load_b_quad, outer, store_c
// Tiled implicit GEMM for GPUs: C[m][n] = sum_k A[m][k] * B[k][n], where the pass's files
// supply gemm_shape(), the Row of A an m decodes to (a_row), load_a, load_b_quad (4
// neighbouring n of a row of B) and store_c, so im2col is never materialised. Built as the
// published fast WGSL matrix kernels are:
//   - A workgroup of WG_N x 8 invocations computes a 64 x TILE_N block of C (TILE_N = 4 WG_N:
//     64, or 32 and 16 for layers that narrow, where a 64-wide tile over 16 channels would
//     waste three quarters of its multiply-adds); each invocation 8 rows x 4 columns.
//   - K goes 16 at a time through workgroup memory held as vec4s, so the inner loop reads
//     two vec4s of A and one of B for 32 multiply-adds.
//   - The next K tile's loads go out before the current tile's multiply-adds (prefetch into
//     registers) and land in workgroup memory after them.
//   - Every invocation loads the same 4 rows of A (and 4 columns of B) in every K tile, so
//     a_row decodes its rows once, before the K loop (except with K_FASTEST, below); the
//     shape is constant (gemm_shape.wgsl).
//   - B's global loads are vec4s of 4 neighbouring n where the layout makes them
//     neighbouring addresses: the forward pass's weights, [k][cout] with cout a multiple of
//     4 (conv2d_forward_gemm_wt_vec4.wgsl). A is an im2col gather in NCHW, its 4 m a row of
//     pixels shifted by the padding and cut by the image edge, so it loads scalars.
//   - Which invocation loads which element of a K tile follows the addresses: for the
//     forward and input gradient neighbouring m are neighbouring pixels, so consecutive
//     invocations take consecutive m; for the weight gradient K runs along the pixels of x
//     and dy, so with K_FASTEST consecutive invocations take consecutive k, and the loads of
//     a group of 16 invocations fall on 16 neighbouring addresses instead of 16 planes.
// Workgroup z selects a slice of K (split-K).
// Log: the first version (16 x WG_N invocations of 4 x 4, scalar tiles, rows decoded with
// divisions by uniform values for every load) ran at 2-4.5 GFLOP/s on lavapipe, this one at
// 4.6-4.9 (3x3 64->64 @16, all three passes: 1.7-1.9 before). Neither has been timed on a
// real GPU (scripts/device-check.sh measures them).
// Safety: workgroup-memory indices are in range by the tile constants; the m and k given to
// a_row, load_a and load_b_quad are clamped into the matrices (the padding of partial tiles
// is selected away), load_b_quad masks the columns past N itself, and store_c is called
// only for (m, n) inside C.

const TILE_M: u32 = 64u;
const TILE_K: u32 = 16u;
const M_QUADS: u32 = 16u;   // TILE_M / 4: a tile row of A as vec4s of 4 m
/// Invocations along n (TILE_N / 4): 16, 8 or 4, set by the Rust side per variant.
override WG_N: u32 = 16u;
/// Consecutive invocations load consecutive k (the weight gradient), not consecutive m or n.
override K_FASTEST: bool = false;
const INVOCATIONS_MIN: u32 = 32u;   // 8 x the smallest WG_N
const A_QUADS_MAX: u32 = 8u;        // TILE_K * M_QUADS / INVOCATIONS_MIN

var<workgroup> tile_a: array<vec4<f32>, 256>;   // [TILE_K][M_QUADS]
var<workgroup> tile_b: array<vec4<f32>, 256>;   // [TILE_K][WG_N]

// What one invocation loads of one K tile: A_QUADS (2, 4 or 8) vec4s of A, 2 of B.
struct Staged {
    a: array<vec4<f32>, A_QUADS_MAX>,
    b: array<vec4<f32>, 2>,
}

fn invocations() -> u32 {
    return 8u * WG_N;
}

fn a_quads() -> u32 {
    return TILE_K * M_QUADS / invocations();
}

// Where invocation t's i-th quad of A goes in the K tile: (kk, quad of 4 m).
fn a_slot(t: u32, i: u32) -> vec2<u32> {
    if (K_FASTEST) {
        return vec2<u32>(t % TILE_K, t / TILE_K + i * (invocations() / TILE_K));
    }
    return vec2<u32>(t / M_QUADS + i * (invocations() / M_QUADS), t % M_QUADS);
}

// Where invocation t's i-th quad of B goes: (kk, quad of 4 n).
fn b_slot(t: u32, i: u32) -> vec2<u32> {
    if (K_FASTEST) {
        return vec2<u32>(t % TILE_K, t / TILE_K + i * (invocations() / TILE_K));
    }
    return vec2<u32>(t / WG_N + 8u * i, t % WG_N);
}

// Where `stage` loads a quad of A: column kc (in_k: below the split's end), rows m_quad + j.
struct StagedA {
    kc: u32,
    in_k: bool,
    m_quad: u32,
}

// Row j of the quad of A `at`; zero outside A.
fn staged_a(rows: array<Row, 4>, m_valid: vec4<bool>, at: StagedA, j: u32) -> f32 {
    var row = rows[j];
    var valid = m_valid[j];
    if (K_FASTEST) {
        let m = at.m_quad + j;
        row = a_row(min(m, gemm_shape().x - 1u));
        valid = m < gemm_shape().x;
    }
    return select(0.0, load_a(row, at.kc), valid && at.in_k);
}

// The K tile from k0 of the block from (m0, n0). Without K_FASTEST an invocation loads the
// same 4 rows of A in every K tile, decoded once by the caller (`rows`; m_valid: inside A);
// with it, its rows change with i and are decoded here.
fn stage(rows: array<Row, 4>, m_valid: vec4<bool>, t: u32, m0: u32, n0: u32, k0: u32, k_end: u32) -> Staged {
    var s: Staged;
    for (var i = 0u; i < a_quads(); i++) {
        let slot = a_slot(t, i);
        let k = k0 + slot.x;
        let at = StagedA(min(k, k_end - 1u), k < k_end, m0 + 4u * slot.y);
        // Built whole: DX12's FXC rejects a vector component written through a loop index
        // (src/gpu/fxc.rs).
        s.a[i] = vec4<f32>(staged_a(rows, m_valid, at, 0u), staged_a(rows, m_valid, at, 1u),
                           staged_a(rows, m_valid, at, 2u), staged_a(rows, m_valid, at, 3u));
    }
    for (var i = 0u; i < 2u; i++) {
        let slot = b_slot(t, i);
        let k = k0 + slot.x;
        let kc = min(k, k_end - 1u);
        s.b[i] = select(vec4<f32>(0.0), load_b_quad(kc, n0 + 4u * slot.y), k < k_end);
    }
    return s;
}

@compute @workgroup_size(WG_N, 8)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let shape = gemm_shape();   // (M, N, K, K per split)
    let m0 = wg.x * TILE_M;
    let n0 = wg.y * 4u * WG_N;
    let k_begin = min(wg.z * shape.w, shape.z);
    let k_end = min(k_begin + shape.w, shape.z);
    let t = lid.y * WG_N + lid.x;

    // The 4 rows of A this invocation loads in every K tile, decoded once.
    let mq = t % M_QUADS;
    let m_first = m0 + 4u * mq;
    var rows: array<Row, 4>;
    for (var j = 0u; j < 4u; j++) {
        rows[j] = a_row(min(m_first + j, shape.x - 1u));
    }
    let m_valid = vec4<u32>(m_first) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(shape.x);

    var staged = stage(rows, m_valid, t, m0, n0, k_begin, k_end);
    var lo = mat4x4<f32>();   // rows 8 lid.y + 0..3
    var hi = mat4x4<f32>();   // rows 8 lid.y + 4..7
    for (var k0 = k_begin; k0 < k_end; k0 += TILE_K) {
        for (var i = 0u; i < a_quads(); i++) {
            let slot = a_slot(t, i);
            tile_a[slot.x * M_QUADS + slot.y] = staged.a[i];
        }
        for (var i = 0u; i < 2u; i++) {
            let slot = b_slot(t, i);
            tile_b[slot.x * WG_N + slot.y] = staged.b[i];
        }
        workgroupBarrier();
        if (k0 + TILE_K < k_end) {
            staged = stage(rows, m_valid, t, m0, n0, k0 + TILE_K, k_end);
        }
        for (var kk = 0u; kk < TILE_K; kk++) {
            let b = tile_b[kk * WG_N + lid.x];
            lo += outer(tile_a[kk * M_QUADS + 2u * lid.y], b);
            hi += outer(tile_a[kk * M_QUADS + 2u * lid.y + 1u], b);
        }
        workgroupBarrier();
    }
    for (var c = 0u; c < 4u; c++) {
        let n = n0 + 4u * lid.x + c;
        for (var j = 0u; j < 4u; j++) {
            let m = m0 + 8u * lid.y + j;
            if (n < shape.y && m < shape.x) {
                store_c(m, n, wg.z, lo[c][j]);
            }
            if (n < shape.y && m + 4u < shape.x) {
                store_c(m + 4u, n, wg.z, hi[c][j]);
            }
        }
    }
}
