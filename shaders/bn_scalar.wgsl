// batch_norm.wgsl's activations one element a "quad" (in .x; QUAD_MASK drops the rest):
// planes of any size.
const QUAD: u32 = 1u;
const QUAD_MASK = vec4<f32>(1.0, 0.0, 0.0, 0.0);

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> dy: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;

fn load_x(q: u32) -> vec4<f32> {
    return vec4<f32>(x[q], 0.0, 0.0, 0.0);
}
fn load_dy(q: u32) -> vec4<f32> {
    return vec4<f32>(dy[q], 0.0, 0.0, 0.0);
}
fn store_y(q: u32, v: vec4<f32>) {
    y[q] = v.x;
}
fn store_dx(q: u32, v: vec4<f32>) {
    dx[q] = v.x;
}
