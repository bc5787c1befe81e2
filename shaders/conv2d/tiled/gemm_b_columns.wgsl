// fills: gemm_b_quads
// requires: gemm_shape, load_b
// provides: load_b_quad
// load_b_quad for gemm_tiled.wgsl from the pass's load_b, a column at a time: for passes
// whose neighbouring n are not neighbouring addresses (the input gradient's B is the
// weights transposed, the weight gradient's is dy across planes) or whose N is not a
// multiple of 4. Safety: load_b gets a column clamped into B; columns past N are zeros.

fn load_b_quad(k: u32, n: u32) -> vec4<f32> {
    // Built whole: DX12's FXC rejects a vector component written through a loop index
    // (src/gpu/fxc.rs).
    return vec4<f32>(load_b_column(k, n), load_b_column(k, n + 1u), load_b_column(k, n + 2u), load_b_column(k, n + 3u));
}

fn load_b_column(k: u32, n: u32) -> f32 {
    let last = gemm_shape().y - 1u;
    return select(0.0, load_b(k, min(n, last)), n <= last);
}
