// requires: run
// The entry point of the register kernels that use subgroups (lanes_subgroup.wgsl,
// conv2d_grad_weight_quads.wgsl): `run` with the invocation's lane in its subgroup.

// Workgroup size: chosen per dispatch (small grids want small groups, so no lane idles).
override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    run(gid.x, wg.y, wg.z, lane);
}
