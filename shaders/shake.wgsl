// requires: QUAD, Quad, StepUniform, WG_SIZE, flat_index, narrow, random_unit, widen
// The shake-shake mix of a block's two branches, plus the block's shortcut:
//   forward   y = shortcut + alpha * a + (1 - alpha) * b
//   backward  da = beta * dy,  db = (1 - beta) * dy,  dshortcut = dy
// Each branch ends in a batch norm, which the forward applies as it reads the branch
// (a = bn(a_x) with that norm's saved statistics and gamma, beta): the norm's own pass only
// computes statistics, and the normalised branches are never stored.
// Coefficients are drawn here, per image or per batch, from random.wgsl keyed by
// (seed, step, block, image): nothing is uploaded per step and runs repeat exactly. The
// image is counted in the step's whole batch, so a device holding a share of it draws what
// one device would for those images.
// Elements go a quad at a time (quad_vec4.wgsl when a plane's length is a multiple of 4,
// quad_scalar.wgsl otherwise).
// Log (lavapipe, 8 2x16d step, 3 dispatches each): one element an invocation, forward
// 28.0 ms, backward 25.7 ms; as vec4s, see the commit that made this file. Normalising the
// branches here removed 6 of the step's 15 normalize passes: on a 2-core AMD EPYC the
// normalize passes went from 152 to 90 ms and the mix's forwards from 46 to 73 ms (its
// per-channel loads), so the step gained about 1 %; the passes over memory it saves matter
// more where the convolutions are fast.

// The shape is fixed per pipeline, so finding a quad's image and channel divides by
// constants (see batch_norm.wgsl).
override CHANNELS: u32 = 1u;   // defaults only for validating the module alone
override PLANE: u32 = 1u;      // H * W

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
    block: u32,
    forward_mode: u32,
    backward_mode: u32,
    level: u32,
    ghost: u32,  // images a ghost batch of the branches' norms (batch_norm.wgsl)
    first_image: u32,  // this batch's first image in the step's whole batch (several devices)
    _pad2: u32,
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
// The branches' batch norms: [ghost] mean[C], inv_std[C], and gamma[C], beta[C] of each.
@group(0) @binding(10) var<storage, read> a_saved: array<f32>;
@group(0) @binding(11) var<storage, read> a_gamma_beta: array<f32>;
@group(0) @binding(12) var<storage, read> b_saved: array<f32>;
@group(0) @binding(13) var<storage, read> b_gamma_beta: array<f32>;

fn plane_quads() -> u32 {
    return PLANE / QUAD;
}

fn image_of(q: u32) -> u32 {
    return q / (CHANNELS * plane_quads());
}

fn draw(kind: u32, img: u32) -> f32 {
    let index = select(0u, sp.first_image + img, sp.level == LEVEL_IMAGE);
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

// Where the statistics of quad q's ghost batch start in a_saved and b_saved.
fn saved_start(q: u32) -> u32 {
    if (sp.ghost >= sp.batch) {
        return 0u;
    }
    return image_of(q) / sp.ghost * 2u * CHANNELS;
}

// batch_norm.wgsl's pre_activation, per branch.
fn normalized_a(q: u32, c: u32) -> vec4<f32> {
    let s = saved_start(q) + c;
    return (widen(a[q]) - a_saved[s]) * a_saved[s + CHANNELS] * a_gamma_beta[c] + a_gamma_beta[CHANNELS + c];
}

fn normalized_b(q: u32, c: u32) -> vec4<f32> {
    let s = saved_start(q) + c;
    return (widen(b[q]) - b_saved[s]) * b_saved[s + CHANNELS] * b_gamma_beta[c] + b_gamma_beta[CHANNELS + c];
}

@compute @workgroup_size(WG_SIZE)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q < sp.batch * CHANNELS * plane_quads()) {
        let k = alpha(image_of(q));
        let c = (q / plane_quads()) % CHANNELS;
        y[q] = narrow(widen(shortcut[q]) + k * normalized_a(q, c) + (1.0 - k) * normalized_b(q, c));
    }
}

@compute @workgroup_size(WG_SIZE)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q < sp.batch * CHANNELS * plane_quads()) {
        let k = beta(image_of(q));
        let g = widen(dy[q]);
        da[q] = narrow(k * g);
        db[q] = narrow((1.0 - k) * g);
        dshortcut[q] = dy[q];
    }
}
