// fills: quad
// requires: Act
// provides: QUAD, QUAD_MASK, Quad, narrow, widen
// Elementwise kernels visit activations a "quad" at a time. This file makes a quad 4
// neighbouring elements, for tensors whose planes (or lengths) are a multiple of 4: every
// tensor of the network. On CPU adapters a vec4 load costs what a scalar one does, so this
// form does a quarter of the memory instructions (ReLU on lavapipe: 2.4x faster).
// quad_scalar.wgsl is the same interface one element a quad, for any size.
alias Quad = vec4<Act>;
const QUAD: u32 = 4u;
const QUAD_MASK = vec4<f32>(1.0);

fn widen(v: Quad) -> vec4<f32> {
    return vec4<f32>(v);
}
fn narrow(v: vec4<f32>) -> Quad {
    return Quad(v);
}
