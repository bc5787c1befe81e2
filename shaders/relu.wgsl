// requires: WG_SIZE, flat_index, load_dx, load_dy, load_x, store_dx, store_y
// ReLU and its gradient, a quad at a time (quad_vec4.wgsl when the length is a multiple of
// 4, quad_scalar.wgsl otherwise) through activations.wgsl. After a batch norm it is fused into batch_norm.wgsl.
// Log (lavapipe, 8 2x16d step): one element an invocation, forward 12.0 ms and backward
// 22.9 ms over 4 dispatches each; as vec4s, see the commit that made this file.

struct ReluParams {
    quads: u32,
    // backward: add into dx (a block's input also feeds its identity shortcut).
    accumulate: u32,
}

@group(0) @binding(0) var<uniform> r: ReluParams;

@compute @workgroup_size(WG_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q < r.quads) {
        store_y(q, max(load_x(q), vec4<f32>(0.0)));
    }
}

// `x` is the forward input: the gradient passes where it was positive.
@compute @workgroup_size(WG_SIZE)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q < r.quads) {
        let g = select(vec4<f32>(0.0), load_dy(q), load_x(q) > vec4<f32>(0.0));
        // A branch, not select (which would read dx even when overwriting it).
        if (r.accumulate != 0u) {
            store_dx(q, load_dx(q) + g);
        } else {
            store_dx(q, g);
        }
    }
}
