// fills: quad
// requires: Act
// provides: QUAD, QUAD_MASK, Quad, narrow, widen
// quad_vec4.wgsl's interface one element a quad (in .x; QUAD_MASK drops the rest), for
// tensors of any size.
alias Quad = Act;
const QUAD: u32 = 1u;
const QUAD_MASK = vec4<f32>(1.0, 0.0, 0.0, 0.0);

fn widen(v: Quad) -> vec4<f32> {
    return vec4<f32>(f32(v), 0.0, 0.0, 0.0);
}
fn narrow(v: vec4<f32>) -> Quad {
    return Act(v.x);
}
