// requires: LossScaleState, StepUniform, WG_SIZE, flat_index
// SGD with momentum, Nesterov and weight decay on every parameter, as PyTorch computes it:
//   g = grad / scale + wd * w;  v = mu * v + g;  w -= lr * (nesterov ? g + mu * v : v)
// The learning rate comes from the step uniform, so a schedule needs no new pipeline. The
// gradients come `scale` times too large with f16 activations (loss_scale.wgsl); a step
// whose gradients overflowed changes nothing. Without f16 the scale is 1: exact.

struct SgdParams {
    len: u32,
    momentum: f32,
    weight_decay: f32,
    nesterov: u32,
}

@group(0) @binding(0) var<uniform> sp: SgdParams;
@group(0) @binding(1) var<uniform> st: StepUniform;
@group(0) @binding(2) var<storage, read_write> weights: array<f32>;
@group(0) @binding(3) var<storage, read> grads: array<f32>;
@group(0) @binding(4) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(5) var<storage, read_write> loss_scale: LossScaleState;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= sp.len || atomicLoad(&loss_scale.overflow) != 0u) {
        return;
    }
    let g = grads[i] / loss_scale.scale + sp.weight_decay * weights[i];
    let v = sp.momentum * velocity[i] + g;
    velocity[i] = v;
    weights[i] -= st.lr * select(v, g + sp.momentum * v, sp.nesterov != 0u);
}
