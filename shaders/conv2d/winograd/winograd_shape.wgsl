// requires: CIN, COUT, H, W, p
// provides: GRAD_INPUT, SPLIT_QUADS, channels_in, channels_out, positions, tile_at,
// provides: tile_cols, tile_stride, tiles
// Winograd F(TILE x TILE, 3x3) convolution (3x3, stride 1, padding 1), used for the forward
// pass and for the input gradient (a convolution of dy with the kernels flipped and their
// channels swapped). The output comes in tiles of TILE x TILE pixels; each is an ALPHA x
// ALPHA patch of input (ALPHA = TILE + 2), transformed (V = B^T d B), multiplied position by
// position with the transformed kernels (U = G g G^T) and summed over input channels, then
// transformed back (Y = A^T M A). F(4x4, 3x3): 36 multiply-adds a tile and channel pair
// where the direct convolution does 144, at the price of larger transforms and rounding
// (its matrices hold 4, 5, 1/6, 1/24).
//
// Three scratch matrices, each position xi (ALPHA^2 of them) a plane:
//   U[xi][k][n]  transformed kernels, k = input channel of this convolution, n = output
//   V[xi][t / 4][k][t % 4]  transformed input patches, t = tile (image, tile row, tile
//                column): 4 tiles of a channel a vec4, channels next to each other, so the
//                GEMM's loop over k reads V in order
//   M[xi][n][t]  their products summed over k
// (tiles go up to tile_stride()).
// Files: winograd_io.wgsl (bindings, loads and stores), winograd4_transforms.wgsl (U, V,
// and Y from M), winograd_gemm.wgsl (M).
// Log (lavapipe, batch 128, `bench ops --all-variants`): see src/ops/conv2d/winograd.rs.

// The output tile's side: 4 (F(4x4, 3x3); the GEMM and the layout hold for any side).
override TILE: u32 = 4u;

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

// The weight gradient's GEMM (winograd_grad_weight.wgsl) sums its tiles in splits() splits
// of SPLIT_QUADS quads of tiles (vec4 rows of V) each (src/ops/conv2d/winograd.rs mirrors it).
const SPLIT_QUADS: u32 = 32u;

// Positions of the transformed domain, one GEMM each.
fn positions() -> u32 {
    return (TILE + 2u) * (TILE + 2u);
}

// Tiles along a column and a row, and in the whole batch.
fn tile_rows() -> u32 {
    return (H + TILE - 1u) / TILE;
}
fn tile_cols() -> u32 {
    return (W + TILE - 1u) / TILE;
}
fn tiles() -> u32 {
    return p.batch * tile_rows() * tile_cols();
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

