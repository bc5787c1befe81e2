// batch_norm.wgsl's activations as vec4s: planes that are a multiple of 4 elements.
const QUAD: u32 = 4u;
const QUAD_MASK = vec4<f32>(1.0);

@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dx: array<vec4<f32>>;

fn load_x(q: u32) -> vec4<f32> {
    return x[q];
}
fn load_dy(q: u32) -> vec4<f32> {
    return dy[q];
}
fn store_y(q: u32, v: vec4<f32>) {
    y[q] = v;
}
fn store_dx(q: u32, v: vec4<f32>) {
    dx[q] = v;
}
