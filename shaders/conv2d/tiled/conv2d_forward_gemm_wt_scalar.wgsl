// fills: gemm_b
// requires: COUT
// provides: load_b
// The forward pass's B for gemm_tiled.wgsl for any cout: the weights [cin*KS*KS][cout] a
// float at a time (gemm_b_columns.wgsl makes the quads).

@group(0) @binding(2) var<storage, read> wt: array<f32>;   // [cin*KS*KS][cout]

fn load_b(k: u32, n: u32) -> f32 {
    return wt[k * COUT + n];
}
