// load_b_quad for gemm_tiled.wgsl from the pass's load_b, a column at a time: for passes
// whose neighbouring n are not neighbouring addresses (the input gradient's B is the
// weights transposed, the weight gradient's is dy across planes) or whose N is not a
// multiple of 4. Safety: load_b gets a column clamped into B; columns past N are zeros.

fn load_b_quad(k: u32, n: u32) -> vec4<f32> {
    let last = gemm_shape().y - 1u;
    var quad: vec4<f32>;
    for (var c = 0u; c < 4u; c++) {
        quad[c] = select(0.0, load_b(k, min(n + c, last)), n + c <= last);
    }
    return quad;
}
