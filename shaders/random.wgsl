// provides: random_u32, random_unit
// Counter-based random numbers: a value is a pure function of (seed, step, stream, index), so
// runs repeat exactly, nothing is uploaded per step, and the CPU reference (src/random.rs) can
// draw the same numbers.

fn pcg_hash(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn random_u32(seed: u32, step: u32, stream: u32, index: u32) -> u32 {
    return pcg_hash(seed ^ pcg_hash(step ^ pcg_hash(stream ^ pcg_hash(index))));
}

// Uniform in [0, 1), with 24 bits so every value is exact in f32.
fn random_unit(seed: u32, step: u32, stream: u32, index: u32) -> f32 {
    return f32(random_u32(seed, step, stream, index) >> 8u) * (1.0 / 16777216.0);
}
