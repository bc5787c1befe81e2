// requires: WG_SIZE, flat_index
// Fully connected layer y = x W^T + b, with W in PyTorch's [out][in] layout. The head is tiny
// (batch x 128 x 10), so one output a invocation is enough.

struct LinearParams {
    batch: u32,
    inputs: u32,
    outputs: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> lp: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight_bias: array<f32>;       // W[out][in], then b[out]
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_weight_bias: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_index(gid, nwg);
    let n = k / lp.outputs;
    let o = k % lp.outputs;
    if (n >= lp.batch) {
        return;
    }
    var s = weight_bias[lp.outputs * lp.inputs + o];
    for (var i = 0u; i < lp.inputs; i++) {
        s += x[n * lp.inputs + i] * weight_bias[o * lp.inputs + i];
    }
    y[n * lp.outputs + o] = s;
}

@compute @workgroup_size(WG_SIZE)
fn grad_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_index(gid, nwg);
    let n = k / lp.inputs;
    let i = k % lp.inputs;
    if (n >= lp.batch) {
        return;
    }
    var s = 0.0;
    for (var o = 0u; o < lp.outputs; o++) {
        s += dy[n * lp.outputs + o] * weight_bias[o * lp.inputs + i];
    }
    dx[n * lp.inputs + i] = s;
}

// One invocation per weight, plus one per bias (column `inputs` stands for the constant 1).
@compute @workgroup_size(WG_SIZE)
fn grad_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_index(gid, nwg);
    let o = k / (lp.inputs + 1u);
    let i = k % (lp.inputs + 1u);
    if (o >= lp.outputs) {
        return;
    }
    var s = 0.0;
    for (var n = 0u; n < lp.batch; n++) {
        let xi = select(1.0, x[n * lp.inputs + min(i, lp.inputs - 1u)], i < lp.inputs);
        s += dy[n * lp.outputs + o] * xi;
    }
    let dst = select(lp.outputs * lp.inputs + o, o * lp.inputs + i, i < lp.inputs);
    grad_weight_bias[dst] = s;
}
