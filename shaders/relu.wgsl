// ReLU and its gradient. (After a batch norm it is fused into batch_norm.wgsl instead.)

struct ReluParams {
    len: u32,
    // backward: add into dx (a block's input also feeds its identity shortcut).
    accumulate: u32,
}

@group(0) @binding(0) var<uniform> r: ReluParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < r.len) {
        y[i] = max(x[i], 0.0);
    }
}

// `x` is the forward input: the gradient passes where it was positive.
@compute @workgroup_size(WG_SIZE)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < r.len) {
        let g = select(0.0, dy[i], x[i] > 0.0);
        // A branch, not select (which would read dx even when overwriting it).
        if (r.accumulate != 0u) {
            dx[i] += g;
        } else {
            dx[i] = g;
        }
    }
}
