// requires: Act, WG_SIZE, flat_index
// Global average pooling over each channel's plane (8x8 at the end of Shake-Shake). Its
// input and input gradient are activations (Act); its output, the linear layer's input, and
// that output's gradient stay f32.

struct PoolParams {
    planes: u32,      // N * C
    plane: u32,       // H * W
}

@group(0) @binding(0) var<uniform> pp: PoolParams;
@group(0) @binding(1) var<storage, read> x: array<Act>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<Act>;

@compute @workgroup_size(WG_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q >= pp.planes) {
        return;
    }
    var s = 0.0;
    for (var i = 0u; i < pp.plane; i++) {
        s += f32(x[q * pp.plane + i]);
    }
    y[q] = s / f32(pp.plane);
}

@compute @workgroup_size(WG_SIZE)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < pp.planes * pp.plane) {
        dx[i] = Act(dy[i / pp.plane] / f32(pp.plane));
    }
}
