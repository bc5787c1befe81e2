// requires: Act, StepUniform, WG_SIZE, flat_index, random_u32, random_unit
// CIFAR bytes to a normalised NCHW batch of activations (Act). Training draws, per image, a crop offset of
// 0..=8 in each direction of the image zero-padded by 4 (zero after normalisation, as the
// authors' Torch code pads) and a horizontal flip, from random.wgsl keyed by
// (seed, step, stream, image), the image counted in the step's whole batch (`first_image`:
// where a device's share of it starts).

// Stream numbers, mirrored in src/random.rs; far from the shake streams.
const STREAM_CROP_ROW: u32 = 0x80000000u;
const STREAM_CROP_COL: u32 = 0x80000001u;
const STREAM_FLIP: u32 = 0x80000002u;
const SIDE: u32 = 32u;
const PLANE: u32 = 1024u;
const IMAGE_BYTES: u32 = 3072u;

struct PrepareParams {
    batch: u32,
    augment: u32,
    first_image: u32,
    _pad1: u32,
    mean: vec4<f32>,      // per channel, 0-255 scale
    inv_std: vec4<f32>,
}

@group(0) @binding(0) var<uniform> pp: PrepareParams;
@group(0) @binding(1) var<uniform> st: StepUniform;
@group(0) @binding(2) var<storage, read> pixels: array<u32>;   // CIFAR records' bytes, 4 a word
@group(0) @binding(3) var<storage, read_write> images: array<Act>;

fn pixel_byte(i: u32) -> f32 {
    return f32((pixels[i / 4u] >> (8u * (i % 4u))) & 255u);
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= pp.batch * IMAGE_BYTES) {
        return;
    }
    let img = i / IMAGE_BYTES;
    let c = (i / PLANE) % 3u;
    var row = (i / SIDE) % SIDE;
    var col = i % SIDE;
    if (pp.augment != 0u) {
        let key = pp.first_image + img;
        if (random_unit(st.seed, st.step, STREAM_FLIP, key) < 0.5) {
            col = SIDE - 1u - col;
        }
        row = row + random_u32(st.seed, st.step, STREAM_CROP_ROW, key) % 9u;
        col = col + random_u32(st.seed, st.step, STREAM_CROP_COL, key) % 9u;
        // Coordinates in the padded image; 4 is the padding.
        if (row < 4u || row >= SIDE + 4u || col < 4u || col >= SIDE + 4u) {
            images[i] = Act(0.0);
            return;
        }
        row -= 4u;
        col -= 4u;
    }
    let v = pixel_byte(img * IMAGE_BYTES + c * PLANE + row * SIDE + col);
    images[i] = Act((v - pp.mean[c]) * pp.inv_std[c]);
}
