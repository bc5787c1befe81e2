// fills: gemm_b_quads
// requires: COUT
// provides: load_b_quad
// The forward pass's B for gemm_tiled.wgsl when cout is a multiple of 4: a row of weights
// [cin*KS*KS][cout] is cout/4 vec4s, so 4 neighbouring output channels are one aligned
// vec4 load. Safety: n is a multiple of 4, so n < COUT puts the whole quad inside the row;
// quads past it select index 0 and give zeros.

@group(0) @binding(2) var<storage, read> wt: array<vec4<f32>>;   // [cin*KS*KS][cout/4]

fn load_b_quad(k: u32, n: u32) -> vec4<f32> {
    let ok = n < COUT;
    return select(vec4<f32>(0.0), wt[select(0u, k * (COUT / 4u) + n / 4u, ok)], ok);
}
