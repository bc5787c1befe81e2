// fills: register_pass
// requires: Block, COL4S, SPLIT_QUADS, accumulate, block_array, block_value, channels_in,
// requires: channels_out, columns, positions, tile_stride
// provides: run
// Winograd F(4x4, 3x3) weight gradient, by the transposition of the forward pass: with
// Y = A^T [U . V] A summed over input channels, dL/dg = G^T [sum over tiles of Dy . V] G,
// where Dy = A dy A^T is the tile's 4 x 4 output gradient taken into the 6 x 6 domain
// (winograd4_transforms.wgsl: transform_gradient) and V the forward pass's transformed
// input. This GEMM a position (workgroup z = split * positions() + xi):
//   P[split][xi][k][n] = sum over the split's tiles t of V[xi][k][t] Dy[xi][t][n],
// register-blocked as the others: each invocation 4 input channels x 32 output channels,
// Dy's channels shared by subgroup broadcast. finish_weight_gradient adds the splits in
// order and transforms back. Needs channels_out() a multiple of 4. Safety: the channel
// block is clamped to the last; Dy is zero for the rounding's tiles (V there is finite,
// made from the clamped last tile), so they add nothing; stores are guarded.

@group(0) @binding(5) var<storage, read_write> v: array<vec4<f32>>;   // [xi][tile_stride / 4][k]
@group(0) @binding(6) var<storage, read_write> m: array<f32>;         // P: [split][xi][k][n]

fn run(gx: u32, block: u32, z: u32, lane: u32) {
    let xi = z % positions();
    let split = z / positions();
    let quads = tile_stride() / 4u;
    let k_count = channels_in();
    let n_count = channels_out();
    let k_blocks = (k_count + 3u) / 4u;
    // Invocations past the end still run the loop: `columns` may need every lane.
    let k0 = min(gx, k_blocks - 1u) * 4u;
    let k1 = min(k0 + 1u, k_count - 1u);
    let k2 = min(k0 + 2u, k_count - 1u);
    let k3 = min(k0 + 3u, k_count - 1u);
    let first_col4 = block * COL4S;
    let q_end = min((split + 1u) * SPLIT_QUADS, quads);
    var sums: Block;
    for (var q = split * SPLIT_QUADS; q < q_end; q++) {
        let row = (xi * quads + q) * k_count;
        let a = mat4x4<f32>(v[row + k0], v[row + k1], v[row + k2], v[row + k3]);
        let at = transpose(a);   // column j: the 4 channels at tile 4 q + j
        for (var j = 0u; j < 4u; j++) {
            let t = 4u * q + j;
            accumulate(&sums, at[j], vec4<f32>(0.0), columns((xi * tile_stride() + t) * (n_count / 4u), first_col4, lane));
        }
    }
    if (gx >= k_blocks) {
        return;
    }
    var acc = block_array(sums);
    for (var l = 0u; l < COL4S; l++) {
        for (var c = 0u; c < 4u; c++) {
            let n = (first_col4 + l) * 4u + c;
            for (var j = 0u; j < 4u; j++) {
                let k = k0 + j;
                if (n < n_count && k < k_count) {
                    m[((split * positions() + xi) * k_count + k) * n_count + n] = block_value(&acc, j, l, c);
                }
            }
        }
    }
}
