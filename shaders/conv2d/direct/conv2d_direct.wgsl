// requires: KS, STRIDE, conv_pad, in_channels, load_pixel, out_channels, out_cols, out_rows, outer,
// requires: store_out, weight_quad
// Direct convolution for GPUs (variant `direct`), with no GEMM form: a workgroup of 64
// invocations computes a tile of output pixels of one image, 8 rows x 8 columns for 32 output
// channels or, for passes of at most 16, 16 x 8 for 16, going through the input channels
// CHUNK at a time. It stages the
// input patch the tile's windows cover and those channels' weights in workgroup memory; then
// every invocation accumulates 4 neighbouring pixels of a row x 8 channels (32 multiply-adds
// a tap, from 4 patch values and 2 vec4s of weights). Offered for passes of 32 channels or
// fewer, where published measurements on Intel iGPUs found direct convolution beats the
// GEMM form; it loads each input value once per tile and decodes no im2col index.
//
// The pass's file supplies the convolution as it sees it: in_channels() input channels (x,
// or dy for the input gradient), out_channels() x out_rows() x out_cols() outputs, padding
// conv_pad(), load_pixel (zero outside the input or past its channels), weight_quad (four
// output channels of one input channel and tap, zero past the channels) and store_out. The
// shape comes from override constants (gemm_shape.wgsl), so every index divides by constants.
//
// Log: new; checked against the CPU reference on every edge shape, never timed on a real GPU
// (scripts/device-check.sh does). On lavapipe it is slower than the register kernels, whose
// shape suits a CPU (no barriers), so the tuner does not pick it there.
// Safety: patch and weight indices are in range by the tile constants (PATCH_MAX covers 16
// rows of 3x3 windows at stride 2, the largest `supports` allows); load_pixel and weight_quad
// mask what lies outside their tensors; store_out is called only inside the output.

const INVOCATIONS: u32 = 64u;
const TILE_COLS: u32 = 8u;       // output columns a workgroup: 2 invocations of 4
const CHUNK: u32 = 4u;           // input channels staged at a time
const PATCH_MAX: u32 = 561u;     // patch_rows() x patch_cols() at 16 rows, 3x3, stride 2
const TAPS_MAX: u32 = 9u;
const QUADS_MAX: u32 = 8u;       // OUT_TILE / 4
override OUT_TILE: u32 = 32u;    // output channels a workgroup: 32 or 16

var<workgroup> staged_patch: array<f32, CHUNK * PATCH_MAX>;            // [CHUNK][side][side]
var<workgroup> weights: array<vec4<f32>, CHUNK * TAPS_MAX * QUADS_MAX>;  // [CHUNK][KS*KS][quads]

fn channel_groups() -> u32 {
    return OUT_TILE / 8u;   // invocations along the channels, 8 channels each
}

// Output rows a workgroup: what its invocations cover, 2 a row, after the channels.
fn tile_rows() -> u32 {
    return INVOCATIONS / (2u * channel_groups());
}

// Input rows and columns the tile's windows cover.
fn patch_rows() -> u32 {
    return (tile_rows() - 1u) * STRIDE + KS;
}

fn patch_cols() -> u32 {
    return (TILE_COLS - 1u) * STRIDE + KS;
}

fn quads() -> u32 {
    return OUT_TILE / 4u;
}

// Stage input channels [i0, i0 + CHUNK) of the patch from (r0, c0) and their weights.
fn stage(t: u32, img: u32, i0: u32, r0: i32, c0: i32, o0: u32) {
    let plane = patch_rows() * patch_cols();
    for (var e = t; e < CHUNK * plane; e += INVOCATIONS) {
        let r = r0 + i32((e % plane) / patch_cols());
        let c = c0 + i32(e % patch_cols());
        staged_patch[e] = load_pixel(img, i0 + e / plane, r, c);
    }
    for (var e = t; e < CHUNK * KS * KS * quads(); e += INVOCATIONS) {
        let tap = (e / quads()) % (KS * KS);
        weights[e] = weight_quad(i0 + e / (quads() * KS * KS), tap, o0 + 4u * (e % quads()));
    }
}

// Invocations: channel group fastest (neighbours read the same patch values and different
// weights), then the 2 column halves, then the rows.
@compute @workgroup_size(INVOCATIONS)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let tiles_across = (out_cols() + TILE_COLS - 1u) / TILE_COLS;
    let out_r0 = (wg.x / tiles_across) * tile_rows();
    let out_c0 = (wg.x % tiles_across) * TILE_COLS;
    let o0 = wg.y * OUT_TILE;
    let img = wg.z;
    let group = t % channel_groups();
    let half = (t / channel_groups()) % 2u;
    let row = t / (2u * channel_groups());
    let r0 = i32(out_r0 * STRIDE) - conv_pad();
    let c0 = i32(out_c0 * STRIDE) - conv_pad();

    // Column j of each is pixel j of the invocation's 4; lo holds channels 0-3, hi 4-7.
    var lo = mat4x4<f32>();
    var hi = mat4x4<f32>();
    for (var i0 = 0u; i0 < in_channels(); i0 += CHUNK) {
        stage(t, img, i0, r0, c0, o0);
        workgroupBarrier();
        for (var ci = 0u; ci < CHUNK; ci++) {
            for (var kh = 0u; kh < KS; kh++) {
                let line = (ci * patch_rows() + row * STRIDE + kh) * patch_cols() + 4u * half * STRIDE;
                for (var kw = 0u; kw < KS; kw++) {
                    let at = line + kw;
                    let a = vec4<f32>(staged_patch[at], staged_patch[at + STRIDE],
                                      staged_patch[at + 2u * STRIDE], staged_patch[at + 3u * STRIDE]);
                    let w = (ci * KS * KS + kh * KS + kw) * quads() + 2u * group;
                    lo += outer(weights[w], a);
                    hi += outer(weights[w + 1u], a);
                }
            }
        }
        workgroupBarrier();
    }

    let out_r = out_r0 + row;
    for (var j = 0u; j < 4u; j++) {
        let out_c = out_c0 + 4u * half + j;
        for (var k = 0u; k < 4u; k++) {
            let o = o0 + 8u * group + k;
            if (out_r < out_rows() && out_c < out_cols() && o < out_channels()) {
                store_out(img, o, out_r, out_c, lo[j][k]);
            }
            if (out_r < out_rows() && out_c < out_cols() && o + 4u < out_channels()) {
                store_out(img, o + 4u, out_r, out_c, hi[j][k]);
            }
        }
    }
}
