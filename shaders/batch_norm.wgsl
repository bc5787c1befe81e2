// requires: QUAD, QUAD_MASK, WG_SIZE, flat_index, load_dy, load_x, store_dx, store_y
// Batch normalisation over NCHW activations, per channel. Training uses the batch's mean and
// biased variance and updates the running statistics (PyTorch's convention: momentum weights
// the new value, the running variance takes the unbiased estimate); evaluation uses the
// running statistics. `saved` holds (mean[C], inv_std[C]) of the last forward for backward,
// one pair a ghost batch (below).
// With `relu` set, the forward writes relu(bn(x)) and the backward masks dy by recomputing
// the pre-activation from x, so the fused ReLU needs no extra buffer.
//
// Ghost batches (`bn.ghost` images, the whole batch unless a run asks for fewer): each run of
// that many consecutive images (the last may be shorter) is normalised with its own
// statistics, as on one of several GPUs that each normalise their share. The running
// statistics are updated once a ghost batch, in order (PyTorch's BatchNorm applied to each
// chunk in turn), by merge_statistics' one thread a channel; dgamma and dbeta add up every
// ghost batch's, and each ghost batch's input gradient uses its own sums.
//
// Elements are visited a "quad" at a time (quad_vec4.wgsl: 4 elements, for planes that are a
// multiple of 4, every plane of the network; quad_scalar.wgsl: 1, any plane) through
// activations.wgsl's load_*/store_*.

// The channels and plane are fixed per pipeline, so the divisions that find an element's
// channel and image are by constants (a multiply and shift) instead of by uniform values: on
// lavapipe a division runs once per SIMD lane. The batch is read from `bn` (it only bounds
// loops and counts), so one pipeline serves a layer's every batch: the training batch, the
// last one of an epoch, evaluation's, and the few images of a check.
override CHANNELS: u32 = 1u;  // defaults only for validating the module alone
override PLANE: u32 = 1u;     // H * W
// Workgroups a channel's reductions (statistics, backward_reduce) are spread over, each
// taking a contiguous run of images. With 1 that workgroup finishes the channel; with more,
// each writes its partial result to `partials` and merge_* finishes, in order. A GPU wants
// hundreds of workgroups in flight, not one a channel (32 for a 128x32x32x32 tensor).
override GROUPS: u32 = 1u;

struct BnParams {
    relu: u32,
    momentum: f32,
    eps: f32,
    batch: u32,
    ghost: u32,
}

@group(0) @binding(0) var<uniform> bn: BnParams;
@group(0) @binding(2) var<storage, read_write> saved: array<f32>;        // [ghost] mean[C], inv_std[C]
@group(0) @binding(3) var<storage, read_write> running: array<f32>;      // mean[C], var[C]
@group(0) @binding(4) var<storage, read> gamma_beta: array<f32>;         // gamma[C], beta[C]
@group(0) @binding(7) var<storage, read_write> grad_gamma_beta: array<f32>;  // dgamma[C], dbeta[C]
@group(0) @binding(9) var<storage, read_write> partials: array<vec4<f32>>;  // [ghost][C][GROUPS]

var<workgroup> partial_sums: array<vec2<f32>, 256>;

fn plane_quads() -> u32 {
    return PLANE / QUAD;
}

// The i-th quad of channel c, counting over every image's plane.
fn channel_quad(i: u32, c: u32) -> u32 {
    let img = i / plane_quads();
    return (img * CHANNELS + c) * plane_quads() + i % plane_quads();
}

fn ghosts() -> u32 {
    return (bn.batch + bn.ghost - 1u) / bn.ghost;
}

fn ghost_images(ghost: u32) -> u32 {
    return min(bn.ghost, bn.batch - ghost * bn.ghost);
}

// The ghost batch of quad q (of any tensor of this shape).
fn ghost_of(q: u32) -> u32 {
    if (bn.ghost >= bn.batch) {
        return 0u;
    }
    return q / (CHANNELS * plane_quads()) / bn.ghost;
}

fn saved_mean(ghost: u32, c: u32) -> f32 {
    return saved[2u * ghost * CHANNELS + c];
}

fn saved_inv_std(ghost: u32, c: u32) -> f32 {
    return saved[(2u * ghost + 1u) * CHANNELS + c];
}

// Where channel c's partial results of `ghost` start: GROUPS of them.
fn partials_of(ghost: u32, c: u32) -> u32 {
    return (ghost * CHANNELS + c) * GROUPS;
}

// The channel-quad indices (as channel_quad takes them) of workgroup `group`'s images of
// `ghost`.
fn group_range(ghost: u32, group: u32) -> vec2<u32> {
    let count = ghost_images(ghost);
    let images = (count + GROUPS - 1u) / GROUPS;
    let run = vec2<u32>(min(group * images, count), min((group + 1u) * images, count));
    return (vec2<u32>(ghost * bn.ghost) + run) * plane_quads();
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

// A channel's values are summed as deviations from one of them, its first in the ghost batch
// (`channel_shift`), so that a mean far from zero costs no precision: moments are (n, sum of
// deviations, sum of squares about their own mean). Two sets' moments merge exactly into
// their union's (Chan, Golub and LeVeque), so one pass needs no mean first, and the merges
// add small numbers.
fn channel_shift(ghost: u32, c: u32) -> f32 {
    return load_x(channel_quad(ghost * bn.ghost * plane_quads(), c)).x;
}

fn merge_moments(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
    if (a.x == 0.0 || b.x == 0.0) {
        return a + b;
    }
    let delta = b.y / b.x - a.y / a.x;
    return vec3<f32>(a.x + b.x, a.y + b.y, a.z + b.z + delta * delta * a.x * b.x / (a.x + b.x));
}

var<workgroup> partial_moments: array<vec3<f32>, 256>;

// Tree merge of every invocation's moments; the result is in partial_moments[0].
fn workgroup_moments(t: u32, m: vec3<f32>) -> vec3<f32> {
    partial_moments[t] = m;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (t < half) {
            partial_moments[t] = merge_moments(partial_moments[t], partial_moments[t + half]);
        }
        workgroupBarrier();
    }
    return partial_moments[0];
}

// GROUPS workgroups a channel and ghost batch (z), one pass over x; the tree merges the
// invocations' moments.
// Log (lavapipe, 8 2x16d step, 15 dispatches): two passes (mean, then squared deviations)
// 33.5 ms; one pass, see the commit that made this.
@compute @workgroup_size(256)
fn statistics(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let c = wg.x;
    let ghost = wg.z;
    let range = group_range(ghost, wg.y);
    let shift = channel_shift(ghost, c);
    var sum = 0.0;
    var squares = 0.0;
    var n = 0.0;
    for (var i = range.x + t; i < range.y; i += 256u) {
        let d = (load_x(channel_quad(i, c)) - shift) * QUAD_MASK;
        sum += dot(d, QUAD_MASK);
        squares += dot(d, d);
        n += f32(QUAD);
    }
    let all = workgroup_moments(t, vec3<f32>(n, sum, max(squares - sum * sum / max(n, 1.0), 0.0)));
    if (t == 0u) {
        if (GROUPS == 1u && ghosts() == 1u) {
            finish_statistics(0u, c, all);
        } else {
            partials[partials_of(ghost, c) + wg.y] = vec4<f32>(all, 0.0);
        }
    }
}

@compute @workgroup_size(WG_SIZE)
fn merge_statistics(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat_index(gid, nwg);
    if (c < CHANNELS) {
        // Ghost batches in order: each updates the running statistics in turn.
        for (var ghost = 0u; ghost < ghosts(); ghost++) {
            let first = partials_of(ghost, c);
            var all = partials[first].xyz;
            for (var g = 1u; g < GROUPS; g++) {
                all = merge_moments(all, partials[first + g].xyz);
            }
            finish_statistics(ghost, c, all);
        }
    }
}

// Mean and 1/std for the backward, and the running statistics, from the moments of a
// channel's ghost batch.
fn finish_statistics(ghost: u32, c: u32, all: vec3<f32>) {
    let count = all.x;
    let mean = channel_shift(ghost, c) + all.y / count;
    let variance = all.z / count;
    saved[2u * ghost * CHANNELS + c] = mean;
    saved[(2u * ghost + 1u) * CHANNELS + c] = inverseSqrt(variance + bn.eps);
    let unbiased = variance * count / max(count - 1.0, 1.0);
    running[c] = (1.0 - bn.momentum) * running[c] + bn.momentum * mean;
    running[CHANNELS + c] = (1.0 - bn.momentum) * running[CHANNELS + c] + bn.momentum * unbiased;
}

// Evaluation: normalise with the running statistics instead.
@compute @workgroup_size(WG_SIZE)
fn eval_statistics(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat_index(gid, nwg);
    if (c < CHANNELS) {
        saved[c] = running[c];
        saved[CHANNELS + c] = inverseSqrt(running[CHANNELS + c] + bn.eps);
    }
}

fn quad_channel(q: u32) -> u32 {
    return (q / plane_quads()) % CHANNELS;
}

fn pre_activation(q: u32, c: u32) -> vec4<f32> {
    let ghost = ghost_of(q);
    let xhat = (load_x(q) - saved_mean(ghost, c)) * saved_inv_std(ghost, c);
    return xhat * gamma_beta[c] + gamma_beta[CHANNELS + c];
}

fn quad_count() -> u32 {
    return bn.batch * CHANNELS * plane_quads();
}

@compute @workgroup_size(WG_SIZE)
fn normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q >= quad_count()) {
        return;
    }
    let z = pre_activation(q, quad_channel(q));
    store_y(q, select(z, max(z, vec4<f32>(0.0)), bn.relu != 0u));
}

fn masked_dy(q: u32, c: u32) -> vec4<f32> {
    let g = load_dy(q);
    return select(g, select(vec4<f32>(0.0), g, pre_activation(q, c) > vec4<f32>(0.0)), bn.relu != 0u);
}

// dgamma = sum(dy * xhat), dbeta = sum(dy), GROUPS workgroups a channel and ghost batch (z).
@compute @workgroup_size(256)
fn backward_reduce(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let c = wg.x;
    let ghost = wg.z;
    let range = group_range(ghost, wg.y);
    // The channel's values, read once: the loop then loads only x and dy.
    let mean = saved_mean(ghost, c);
    let inv_std = saved_inv_std(ghost, c);
    let gamma = gamma_beta[c];
    let beta = gamma_beta[CHANNELS + c];
    let relu = bn.relu != 0u;
    var s = vec2<f32>(0.0);
    for (var i = range.x + t; i < range.y; i += 256u) {
        let q = channel_quad(i, c);
        let xhat = (load_x(q) - mean) * inv_std;
        let dy_q = load_dy(q);
        let g = select(dy_q, select(vec4<f32>(0.0), dy_q, xhat * gamma + beta > vec4<f32>(0.0)), relu) * QUAD_MASK;
        s += vec2<f32>(dot(g, xhat), dot(g, vec4<f32>(1.0)));
    }
    let total = workgroup_sum(t, s);
    if (t == 0u) {
        if (GROUPS == 1u && ghosts() == 1u) {
            grad_gamma_beta[c] = total.x;
            grad_gamma_beta[CHANNELS + c] = total.y;
        } else {
            partials[partials_of(ghost, c) + wg.y] = vec4<f32>(total, 0.0, 0.0);
        }
    }
}

@compute @workgroup_size(WG_SIZE)
fn merge_gradients(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat_index(gid, nwg);
    if (c < CHANNELS) {
        var total = vec2<f32>(0.0);
        for (var ghost = 0u; ghost < ghosts(); ghost++) {
            let first = partials_of(ghost, c);
            var sums = vec2<f32>(0.0);
            for (var g = 0u; g < GROUPS; g++) {
                sums += partials[first + g].xy;
            }
            // The ghost batch's own sums, for backward_apply.
            partials[first] = vec4<f32>(sums, 0.0, 0.0);
            total += sums;
        }
        grad_gamma_beta[c] = total.x;
        grad_gamma_beta[CHANNELS + c] = total.y;
    }
}

// dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)), the means over the quad's
// ghost batch.
@compute @workgroup_size(WG_SIZE)
fn backward_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q >= quad_count()) {
        return;
    }
    let c = quad_channel(q);
    let ghost = ghost_of(q);
    let m = f32(ghost_images(ghost) * PLANE);
    let inv_std = saved_inv_std(ghost, c);
    let xhat = (load_x(q) - saved_mean(ghost, c)) * inv_std;
    var sums = vec2<f32>(grad_gamma_beta[c], grad_gamma_beta[CHANNELS + c]);
    if (ghosts() > 1u) {
        sums = partials[partials_of(ghost, c)].xy;
    }
    let g = masked_dy(q, c) - sums.y / m - xhat * sums.x / m;
    store_dx(q, gamma_beta[c] * inv_std * g);
}
