// Tiled implicit GEMM for GPUs: C[m][n] = sum_k A[m][k] * B[k][n], where the direction's file
// supplies gemm_shape(), load_a, load_b and store_c (so im2col is never materialised). A
// workgroup of WG_N x 16 invocations stages a 64x16 slice of A and a 16xTILE_N slice of B in
// workgroup memory and each invocation accumulates a 4x4 block, so a workgroup computes a
// 64 x TILE_N block of C, TILE_N = 4 WG_N: 64, or 32 and 16 for layers that narrow (a 64-wide
// tile over 16 channels would waste three quarters of its multiply-adds). Workgroup z
// selects a slice of K (split-K).
// Safety: workgroup-memory indices are in range by the tile constants (TILE_N <= 64); the
// coordinates given to load_a and load_b are clamped into the matrices (the padding of
// partial tiles is selected away) and store_c is called only for (m, n) inside C.

const TILE_M: u32 = 64u;
const TILE_K: u32 = 16u;
/// Invocations along n: 16, 8 or 4 (set by the Rust side per variant).
override WG_N: u32 = 16u;

var<workgroup> tile_a: array<f32, 1024>;   // [TILE_K][TILE_M]
var<workgroup> tile_b: array<f32, 1024>;   // [TILE_K][TILE_N]

@compute @workgroup_size(WG_N, 16)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let tile_n = 4u * WG_N;
    let invocations = 16u * WG_N;
    let shape = gemm_shape();   // (M, N, K, K per split)
    let m0 = wg.x * TILE_M;
    let n0 = wg.y * tile_n;
    let k_begin = min(wg.z * shape.w, shape.z);
    let k_end = min(k_begin + shape.w, shape.z);
    let t = lid.y * WG_N + lid.x;

    var acc = mat4x4<f32>();
    for (var k0 = k_begin; k0 < k_end; k0 += TILE_K) {
        for (var e = t; e < TILE_K * TILE_M; e += invocations) {
            let ka = k0 + e / TILE_M;
            let ma = m0 + e % TILE_M;
            // Clamped coordinates keep every load in bounds; select zeroes the padding.
            tile_a[e] = select(0.0, load_a(min(ma, shape.x - 1u), min(ka, k_end - 1u)), ma < shape.x && ka < k_end);
        }
        for (var e = t; e < TILE_K * tile_n; e += invocations) {
            let kb = k0 + e / tile_n;
            let nb = n0 + e % tile_n;
            tile_b[e] = select(0.0, load_b(min(kb, k_end - 1u), min(nb, shape.y - 1u)), nb < shape.y && kb < k_end);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let ai = kk * TILE_M + lid.y * 4u;
            let bi = kk * tile_n + lid.x * 4u;
            let a = vec4<f32>(tile_a[ai], tile_a[ai + 1u], tile_a[ai + 2u], tile_a[ai + 3u]);
            let b = vec4<f32>(tile_b[bi], tile_b[bi + 1u], tile_b[bi + 2u], tile_b[bi + 3u]);
            acc += outer(a, b);
        }
        workgroupBarrier();
    }
    for (var c = 0u; c < 4u; c++) {
        for (var j = 0u; j < 4u; j++) {
            let m = m0 + lid.y * 4u + j;
            let n = n0 + lid.x * 4u + c;
            if (m < shape.x && n < shape.y) {
                store_c(m, n, wg.z, acc[c][j]);
            }
        }
    }
}
