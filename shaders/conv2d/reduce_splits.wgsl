// requires: WG_SIZE, flat_index
// Adds the partial sums of `splits` equal parts, in order: out[i] = sum_s partial[s*len + i];
// or, in_place, the same sums written over the first part.

struct ReduceParams {
    len: u32,
    splits: u32,
}

@group(0) @binding(0) var<uniform> r: ReduceParams;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
// in_place's parts, and its result over the first: where the parts lie in a buffer the result
// shares (Winograd's scratch), which one dispatch cannot bind both read-only and writable.
@group(0) @binding(3) var<storage, read_write> parts: array<f32>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= r.len) {
        return;
    }
    var sum = 0.0;
    for (var s = 0u; s < r.splits; s++) {
        sum += partial[s * r.len + i];
    }
    out[i] = sum;
}

@compute @workgroup_size(WG_SIZE)
fn in_place(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= r.len) {
        return;
    }
    // Each invocation reads its own column of parts before writing its first entry.
    var sum = 0.0;
    for (var s = 0u; s < r.splits; s++) {
        sum += parts[s * r.len + i];
    }
    parts[i] = sum;
}
