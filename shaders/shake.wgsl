// The shake-shake mix of a block's two branches, plus the block's shortcut:
//   forward   y = shortcut + alpha * a + (1 - alpha) * b
//   backward  da = beta * dy,  db = (1 - beta) * dy,  dshortcut = dy
// Coefficients are drawn here, per image or per batch, from random.wgsl keyed by
// (seed, step, block, image): nothing is uploaded per step and runs repeat exactly.
// Elements go a quad at a time (quad_vec4.wgsl when an image's length is a multiple of 4,
// quad_scalar.wgsl otherwise).
// Log (lavapipe, 8 2x16d step, 3 dispatches each): one element an invocation, forward
// 28.0 ms, backward 25.7 ms; as vec4s, see the commit that made this file.

// Stream numbers, mirrored in src/random.rs (a test compares them).
const STREAM_ALPHA: u32 = 0u;
const STREAM_BETA: u32 = 1u;

// Modes and levels, mirrored in src/ops/shake.rs (a test compares them).
const FORWARD_SHAKE: u32 = 0u;  // random alpha
const FORWARD_EVEN: u32 = 1u;   // alpha = 0.5, also evaluation
const BACKWARD_SHAKE: u32 = 0u; // a fresh random beta
const BACKWARD_EVEN: u32 = 1u;  // beta = 0.5
const BACKWARD_KEEP: u32 = 2u;  // beta = alpha
const LEVEL_BATCH: u32 = 0u;    // one coefficient per batch
const LEVEL_IMAGE: u32 = 1u;    // one per image
struct ShakeParams {
    batch: u32,
    image_quads: u32,    // C * H * W / QUAD
    block: u32,
    forward_mode: u32,
    backward_mode: u32,
    level: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> sp: ShakeParams;
@group(0) @binding(1) var<uniform> st: StepUniform;
@group(0) @binding(2) var<storage, read> a: array<Quad>;
@group(0) @binding(3) var<storage, read> b: array<Quad>;
@group(0) @binding(4) var<storage, read> shortcut: array<Quad>;
@group(0) @binding(5) var<storage, read_write> y: array<Quad>;
@group(0) @binding(6) var<storage, read> dy: array<Quad>;
@group(0) @binding(7) var<storage, read_write> da: array<Quad>;
@group(0) @binding(8) var<storage, read_write> db: array<Quad>;
@group(0) @binding(9) var<storage, read_write> dshortcut: array<Quad>;

fn draw(kind: u32, img: u32) -> f32 {
    let index = select(0u, img, sp.level == LEVEL_IMAGE);
    return random_unit(st.seed, st.step, sp.block * 2u + kind, index);
}

fn alpha(img: u32) -> f32 {
    return select(0.5, draw(STREAM_ALPHA, img), sp.forward_mode == FORWARD_SHAKE);
}

fn beta(img: u32) -> f32 {
    switch sp.backward_mode {
        case BACKWARD_SHAKE: { return draw(STREAM_BETA, img); }
        case BACKWARD_KEEP: { return alpha(img); }
        default: { return 0.5; }  // BACKWARD_EVEN
    }
}

@compute @workgroup_size(WG_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q < sp.batch * sp.image_quads) {
        let k = alpha(q / sp.image_quads);
        y[q] = shortcut[q] + k * a[q] + (1.0 - k) * b[q];
    }
}

@compute @workgroup_size(WG_SIZE)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q < sp.batch * sp.image_quads) {
        let k = beta(q / sp.image_quads);
        let g = dy[q];
        da[q] = k * g;
        db[q] = (1.0 - k) * g;
        dshortcut[q] = g;
    }
}
