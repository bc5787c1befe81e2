// requires: LossScaleState, WG_SIZE, flat_index
// Dynamic loss scaling for f16 activations, as PyTorch's GradScaler does it. The loss's
// gradient is multiplied by `scale` (cross_entropy.wgsl), so that the small gradients of the
// f16 backward pass stay clear of f16's smallest values (below 6e-5 they lose bits, below
// 6e-8 they are 0); the f32 weight gradients come out `scale` times too large and SGD
// divides them back (sgd.wgsl). A step whose gradients hold an infinity or NaN (an f16
// gradient past 65504: too large a scale) is skipped and the scale halves, down to 1 (below,
// it would shrink gradients that already overflow f16: a diverged run, which the trainer's
// check of the loss stops); after `growth_interval` clean steps in a row it doubles. The
// scale stays a power of two, so scaling and unscaling round nothing.
// Reference: src/cpu/loss_scale.rs.

struct ScaleParams {
    len: u32,
    growth_interval: u32,
}

@group(0) @binding(0) var<uniform> sc: ScaleParams;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss_scale: LossScaleState;

// Marks the step if any of `len` gradients is an infinity or NaN (every exponent bit set).
@compute @workgroup_size(WG_SIZE)
fn find_overflow(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < sc.len && (bitcast<u32>(grads[i]) & 0x7f800000u) == 0x7f800000u) {
        atomicStore(&loss_scale.overflow, 1u);
    }
}

// The step's end, after SGD: halve on an overflow (the step was skipped), double after
// growth_interval clean steps.
@compute @workgroup_size(1)
fn update() {
    if (atomicLoad(&loss_scale.overflow) != 0u) {
        loss_scale.scale = max(loss_scale.scale * 0.5, 1.0);
        loss_scale.clean_steps = 0u;
        loss_scale.skipped += 1u;
    } else {
        loss_scale.clean_steps += 1u;
        if (loss_scale.clean_steps >= sc.growth_interval) {
            loss_scale.scale *= 2.0;
            loss_scale.clean_steps = 0u;
        }
    }
    atomicStore(&loss_scale.overflow, 0u);
}
