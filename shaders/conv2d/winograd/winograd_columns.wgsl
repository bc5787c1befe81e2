// fills: register_pass
// requires: channels_out
// provides: lane_vec4
// The column operand of the Winograd GEMMs (winograd_gemm.wgsl, winograd_grad_weight.wgsl):
// rows of channels_out() values, read 4 channels at a time and shared across a subgroup
// (lanes_subgroup.wgsl). U[xi][k][n / 4] for the forward pass and the input gradient, the
// transformed output gradient Dy[xi][t][n / 4] for the weight gradient. Safety: channels
// past the last are selected to index 0 and masked.

@group(0) @binding(4) var<storage, read_write> u: array<vec4<f32>>;

// Four channels of the row starting at vec4 `base`.
fn lane_vec4(base: u32, col4: u32) -> vec4<f32> {
    let ok = col4 < channels_out() / 4u;
    return select(vec4<f32>(0.0), u[base + select(0u, col4, ok)], ok);
}
