// Batch normalisation over NCHW activations, per channel. Training uses the batch's mean and
// biased variance and updates the running statistics (PyTorch's convention: momentum weights
// the new value, the running variance takes the unbiased estimate); evaluation uses the
// running statistics. `saved` holds (mean[C], inv_std[C]) of the last forward for backward.
// With `relu` set, the forward writes relu(bn(x)) and the backward masks dy by recomputing
// the pre-activation from x, so the fused ReLU needs no extra buffer.

struct BnParams {
    batch: u32,
    channels: u32,
    plane: u32,       // H * W
    relu: u32,
    momentum: f32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> bn: BnParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> saved: array<f32>;        // mean[C], inv_std[C]
@group(0) @binding(3) var<storage, read_write> running: array<f32>;      // mean[C], var[C]
@group(0) @binding(4) var<storage, read> gamma_beta: array<f32>;         // gamma[C], beta[C]
@group(0) @binding(5) var<storage, read_write> y: array<f32>;            // forward output
@group(0) @binding(6) var<storage, read> dy: array<f32>;
@group(0) @binding(7) var<storage, read_write> grad_gamma_beta: array<f32>;  // dgamma[C], dbeta[C]
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;

var<workgroup> partial_sums: array<vec2<f32>, 256>;

fn element(i: u32, c: u32) -> u32 {
    let img = i / bn.plane;
    return (img * bn.channels + c) * bn.plane + i % bn.plane;
}

// Tree sum of every invocation's pair; the result is in partial_sums[0].
fn workgroup_sum(t: u32, v: vec2<f32>) -> vec2<f32> {
    partial_sums[t] = v;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (t < half) {
            partial_sums[t] += partial_sums[t + half];
        }
        workgroupBarrier();
    }
    let total = partial_sums[0];
    workgroupBarrier();
    return total;
}

// One workgroup a channel; two passes (mean, then squared deviations) keep the variance
// accurate when the mean is large.
@compute @workgroup_size(256)
fn statistics(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let c = wg.x;
    let count = bn.batch * bn.plane;
    var s = 0.0;
    for (var i = t; i < count; i += 256u) {
        s += x[element(i, c)];
    }
    let mean = workgroup_sum(t, vec2<f32>(s, 0.0)).x / f32(count);
    var d = 0.0;
    for (var i = t; i < count; i += 256u) {
        let e = x[element(i, c)] - mean;
        d += e * e;
    }
    let variance = workgroup_sum(t, vec2<f32>(d, 0.0)).x / f32(count);
    if (t == 0u) {
        saved[c] = mean;
        saved[bn.channels + c] = inverseSqrt(variance + bn.eps);
        let unbiased = variance * f32(count) / f32(max(count, 2u) - 1u);
        running[c] = (1.0 - bn.momentum) * running[c] + bn.momentum * mean;
        running[bn.channels + c] = (1.0 - bn.momentum) * running[bn.channels + c] + bn.momentum * unbiased;
    }
}

// Evaluation: normalise with the running statistics instead.
@compute @workgroup_size(64)
fn eval_statistics(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c < bn.channels) {
        saved[c] = running[c];
        saved[bn.channels + c] = inverseSqrt(running[bn.channels + c] + bn.eps);
    }
}

fn pre_activation(i: u32) -> f32 {
    let c = (i / bn.plane) % bn.channels;
    let xhat = (x[i] - saved[c]) * saved[bn.channels + c];
    return xhat * gamma_beta[c] + gamma_beta[bn.channels + c];
}

@compute @workgroup_size(256)
fn normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= bn.batch * bn.channels * bn.plane) {
        return;
    }
    let z = pre_activation(i);
    y[i] = select(z, max(z, 0.0), bn.relu != 0u);
}

fn masked_dy(i: u32) -> f32 {
    return select(dy[i], select(0.0, dy[i], pre_activation(i) > 0.0), bn.relu != 0u);
}

// dgamma = sum(dy * xhat), dbeta = sum(dy), one workgroup a channel.
@compute @workgroup_size(256)
fn backward_reduce(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let c = wg.x;
    let count = bn.batch * bn.plane;
    var s = vec2<f32>(0.0);
    for (var i = t; i < count; i += 256u) {
        let e = element(i, c);
        let g = masked_dy(e);
        s += vec2<f32>(g * (x[e] - saved[c]) * saved[bn.channels + c], g);
    }
    let total = workgroup_sum(t, s);
    if (t == 0u) {
        grad_gamma_beta[c] = total.x;
        grad_gamma_beta[bn.channels + c] = total.y;
    }
}

// dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)).
@compute @workgroup_size(256)
fn backward_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= bn.batch * bn.channels * bn.plane) {
        return;
    }
    let c = (i / bn.plane) % bn.channels;
    let m = f32(bn.batch * bn.plane);
    let inv_std = saved[bn.channels + c];
    let xhat = (x[i] - saved[c]) * inv_std;
    let g = masked_dy(i) - grad_gamma_beta[bn.channels + c] / m - xhat * grad_gamma_beta[c] / m;
    dx[i] = gamma_beta[c] * inv_std * g;
}
