// requires: LossScaleState, WG_SIZE, flat_index
// Softmax cross-entropy averaged over the batch, and the number of correct predictions.
// `metrics` accumulates on the GPU so the trainer reads it only when it wants to show it:
//   [0] sum of per-image losses, [1] correct predictions, [2] images seen (all accumulated),
//   [3] this batch's mean loss, [4] steps that ran to their end (`count_step`).

struct LossParams {
    batch: u32,
    classes: u32,
    // The gradient is of the mean over this many images: the batch, or the step's whole
    // batch when this is one device's share of it (the devices' gradients are then summed).
    mean_over: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> lp: LossParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> metrics: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
// The backward multiplies the gradient by the loss scale (1 without f16 activations).
@group(0) @binding(5) var<storage, read_write> loss_scale: LossScaleState;

var<workgroup> partial_sums: array<vec2<f32>, 256>;

fn log_sum_exp(n: u32) -> f32 {
    var m = logits[n * lp.classes];
    for (var k = 1u; k < lp.classes; k++) {
        m = max(m, logits[n * lp.classes + k]);
    }
    var s = 0.0;
    for (var k = 0u; k < lp.classes; k++) {
        s += exp(logits[n * lp.classes + k] - m);
    }
    return m + log(s);
}

// The first maximum counts as the prediction, as argmax does.
fn predicted(n: u32) -> u32 {
    var best = 0u;
    for (var k = 1u; k < lp.classes; k++) {
        if (logits[n * lp.classes + k] > logits[n * lp.classes + best]) {
            best = k;
        }
    }
    return best;
}

// One workgroup: each invocation takes every 256th image, then a tree sum.
@compute @workgroup_size(256)
fn forward(@builtin(local_invocation_index) t: u32) {
    var s = vec2<f32>(0.0);
    for (var n = t; n < lp.batch; n += 256u) {
        let label = labels[n];
        s.x += log_sum_exp(n) - logits[n * lp.classes + label];
        s.y += select(0.0, 1.0, predicted(n) == label);
    }
    partial_sums[t] = s;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (t < half) {
            partial_sums[t] += partial_sums[t + half];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        let total = partial_sums[0];
        metrics[0] += total.x;
        metrics[1] += total.y;
        metrics[2] += f32(lp.batch);
        metrics[3] = total.x / f32(lp.batch);
    }
}

// A step's last dispatch: one more step that ran to its end. The trainer compares the count
// with the steps it submitted, so a step whose commands did not run (a driver that stops a
// long command buffer and reports it completed, as macOS does) is an error, not a silent gap.
// Exact in f32 up to 2^24 steps an epoch.
@compute @workgroup_size(1)
fn count_step() {
    metrics[4] += 1.0;
}

// d(mean loss)/d logits = (softmax - onehot) / mean_over, times the loss scale.
@compute @workgroup_size(WG_SIZE)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = flat_index(gid, nwg);
    if (n >= lp.batch) {
        return;
    }
    let lse = log_sum_exp(n);
    for (var k = 0u; k < lp.classes; k++) {
        let target_prob = select(0.0, 1.0, labels[n] == k);
        let prob = exp(logits[n * lp.classes + k] - lse);
        dlogits[n * lp.classes + k] = (prob - target_prob) / f32(lp.mean_over) * loss_scale.scale;
    }
}
