// Winograd F(2x2, 3x3) convolution (3x3, stride 1, padding 1), used for the forward pass and
// for the input gradient (a convolution of dy with the kernels flipped and their channels
// swapped). The output comes in tiles of 2 x 2 pixels; each is a 4 x 4 patch of input,
// transformed (V = B^T d B), multiplied position by position with the transformed kernels
// (U = G g G^T) and summed over input channels, then transformed back (Y = A^T M A): 16
// multiply-adds a tile and channel pair where the direct convolution does 36.
//
// Three scratch matrices, each position xi (16) a plane:
//   U[xi][k][n]  transformed kernels, k = input channel of this convolution, n = output
//   V[xi][t / 4][k][t % 4]  transformed input patches, t = tile (image, tile row, tile
//                column): 4 tiles of a channel a vec4, channels next to each other, so the
//                GEMM's loop over k reads V in order
//   M[xi][n][t]  their products summed over k
// (tiles go up to tile_stride()).
// Files: winograd_transforms.wgsl (U, V, and Y from M), winograd_gemm.wgsl (M).
// Log (lavapipe, batch 128, `bench ops --all-variants`): see conv2d_params.wgsl.

// The input gradient: the convolution runs from dy (cout channels) to dx (cin channels).
override GRAD_INPUT: bool = false;

// Channels of this convolution's input (k) and output (n).
// The shape comes from gemm_shape.wgsl's override constants: the transforms decode every
// tile index, and divisions by uniform values cost a CPU adapter one per SIMD lane.
fn channels_in() -> u32 {
    return select(CIN, COUT, GRAD_INPUT);
}
fn channels_out() -> u32 {
    return select(COUT, CIN, GRAD_INPUT);
}

// Tiles of 2 x 2 along a column and a row, and in the whole batch.
fn tile_rows() -> u32 {
    return (H + 1u) / 2u;
}
fn tile_cols() -> u32 {
    return (W + 1u) / 2u;
}
fn tiles() -> u32 {
    return BATCH * tile_rows() * tile_cols();
}
// Tile t as (image, tile row, tile column).
fn tile_at(t: u32) -> vec3<u32> {
    return vec3<u32>(t / (tile_cols() * tile_rows()), (t / tile_cols()) % tile_rows(), t % tile_cols());
}

// V and M rows hold tiles() rounded up to a multiple of 4, so the GEMM loads 4 tiles as one
// aligned vec4 (the rounding's entries are never written or stored).
fn tile_stride() -> u32 {
    return (tiles() + 3u) / 4u * 4u;
}
