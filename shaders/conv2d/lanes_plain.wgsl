// fills: lanes
// requires: lane_vec4, run
// provides: columns
// Register-kernel variant for adapters without subgroups: every invocation loads the eight
// vec4s of a row itself.

fn columns(base: u32, first_col4: u32, _lane: u32) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(
        lane_vec4(base, first_col4), lane_vec4(base, first_col4 + 1u),
        lane_vec4(base, first_col4 + 2u), lane_vec4(base, first_col4 + 3u),
        lane_vec4(base, first_col4 + 4u), lane_vec4(base, first_col4 + 5u),
        lane_vec4(base, first_col4 + 6u), lane_vec4(base, first_col4 + 7u),
    );
}

// Workgroup size: chosen per dispatch (small grids want small groups, so no lane idles).
override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    run(gid.x, wg.y, wg.z, 0u);
}
