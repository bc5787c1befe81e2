// fills: register_pass
// requires: Block, COL4S, accumulate, block_array, block_value, channels_in, channels_out, columns,
// requires: tile_stride, tiles
// provides: run
// Winograd, forward pass and input gradient: M[xi][n][t] = sum over k of U[xi][k][n]
// V[xi][k][t] (see winograd_shape.wgsl), a GEMM a position (workgroup z = xi),
// register-blocked as the direct register kernels are: each invocation 4 tiles x 32 output
// channels, the channels' U shared by subgroup broadcast (lanes_subgroup.wgsl). Needs
// channels_out() a multiple of 4 (U loads as vec4s). Safety: the tile block is clamped to
// the last; lane_vec4 selects index 0 and masks past the last channel; stores are guarded
// (rows are tile_stride() long, so a block of 4 tiles is always inside them).

// U (winograd_columns.wgsl), V and M are ranges of one scratch buffer, which a dispatch may
// bind only one way: so all read_write, though U and V are only read.
@group(0) @binding(5) var<storage, read_write> v: array<vec4<f32>>;   // [xi][tile_stride / 4][k]
@group(0) @binding(6) var<storage, read_write> m: array<f32>;         // [xi][n][t]

fn run(gx: u32, block: u32, xi: u32, lane: u32) {
    let t_count = tiles();
    let quads = tile_stride() / 4u;
    let k_count = channels_in();
    let n_count = channels_out();
    // Invocations past the end still run the loop: `columns` may need every lane.
    let q = min(gx, quads - 1u);
    let first_col4 = block * COL4S;
    var sums: Block;
    for (var k = 0u; k < k_count; k++) {
        let a = v[(xi * quads + q) * k_count + k];
        accumulate(&sums, a, vec4<f32>(0.0), columns((xi * k_count + k) * (n_count / 4u), first_col4, lane));
    }
    if (gx >= quads) {
        return;
    }
    var acc = block_array(sums);
    for (var l = 0u; l < COL4S; l++) {
        for (var c = 0u; c < 4u; c++) {
            let n = (first_col4 + l) * 4u + c;
            for (var j = 0u; j < 4u; j++) {
                if (n < n_count) {
                    m[(xi * n_count + n) * tile_stride() + 4u * q + j] = block_value(&acc, j, l, c);
                }
            }
        }
    }
}
