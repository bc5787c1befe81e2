// fills: lanes
// requires: COL4S, lane_vec4
// provides: columns
// Register-kernel variant for adapters with subgroups of 8 or more lanes: each lane loads one
// vec4 of a row and subgroupBroadcast shares it, so a row of 32 columns costs one load per
// lane instead of eight. Lanes past the COL4S-th load duplicates that are never read.

fn columns(base: u32, first_col4: u32, lane: u32) -> array<vec4<f32>, 8> {
    let mine = lane_vec4(base, first_col4 + lane % COL4S);
    return array<vec4<f32>, 8>(
        subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u),
        subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u),
        subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u),
        subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u),
    );
}
