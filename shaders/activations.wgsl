// requires: Quad, narrow, widen
// provides: load_dx, load_dy, load_x, store_dx, store_y
// The bindings of batch_norm.wgsl and relu.wgsl: an input, its output, and their gradients,
// as quads (quad_vec4.wgsl or quad_scalar.wgsl), widened to vec4 for the arithmetic.

@group(0) @binding(1) var<storage, read> x: array<Quad>;
@group(0) @binding(5) var<storage, read_write> y: array<Quad>;
@group(0) @binding(6) var<storage, read> dy: array<Quad>;
@group(0) @binding(8) var<storage, read_write> dx: array<Quad>;

fn load_x(q: u32) -> vec4<f32> {
    return widen(x[q]);
}
fn load_dy(q: u32) -> vec4<f32> {
    return widen(dy[q]);
}
fn load_dx(q: u32) -> vec4<f32> {
    return widen(dx[q]);
}
fn store_y(q: u32, v: vec4<f32>) {
    y[q] = narrow(v);
}
fn store_dx(q: u32, v: vec4<f32>) {
    dx[q] = narrow(v);
}
