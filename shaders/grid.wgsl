// provides: WG_SIZE, flat_index
// Elementwise kernels run 256 invocations a workgroup on a 2-D grid of workgroups, since a
// batch of activations can need more than the 65,535 workgroups one dimension allows.

const WG_SIZE: u32 = 256u;

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG_SIZE;
}
