// requires: Act, CIN, COUT, GRAD_INPUT, H, W, p, y_index
// provides: input_at, input_quad, kernel_at, src, store_output, u, v, weight_grad
// What the Winograd transforms (winograd4_transforms.wgsl) read and write: the pass's
// input, kernels and output, and the scratch matrices (see winograd_shape.wgsl). Safety:
// input pixels outside the image are selected to index 0 and masked.

@group(0) @binding(1) var<storage, read> src: array<Act>;    // x (forward) or dy
@group(0) @binding(2) var<storage, read> wt: array<f32>;     // [cin][KS][KS][cout]
@group(0) @binding(3) var<storage, read_write> dst: array<Act>;  // y (forward) or dx
@group(0) @binding(4) var<storage, read_write> u: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<vec4<f32>>;   // rows of tile_stride() / 4
@group(0) @binding(6) var<storage, read> m: array<vec4<f32>>;
// The weight gradient's pass writes here, not to dst: weights and their gradients stay f32
// when the activations are f16.
@group(0) @binding(7) var<storage, read_write> weight_grad: array<f32>;   // [cin][KS][KS][cout]

// The kernel of this convolution from input channel k to output channel n at (r, c): the
// input gradient's is flipped, its channels swapped.
fn kernel_at(k: u32, n: u32, r: u32, c: u32) -> f32 {
    var at = ((k * 3u + r) * 3u + c) * COUT + n;
    if (GRAD_INPUT) {
        at = ((n * 3u + 2u - r) * 3u + 2u - c) * COUT + k;
    }
    return wt[at];
}

// Channel `k` of the input at (row, col) of image `img`; zero outside the image.
fn input_at(img: u32, k: u32, row: i32, col: i32) -> f32 {
    let ok = row >= 0 && col >= 0 && row < i32(H) && col < i32(W);
    let r = u32(select(0, row, ok));
    let c = u32(select(0, col, ok));
    var at = ((img * CIN + k) * H + r) * W + c;
    if (GRAD_INPUT) {
        at = y_index(img, k, r, c);
    }
    return select(0.0, f32(src[at]), ok);
}

// Inputs (row, col .. col + 3) of channel k of image img: 4 neighbours of a patch row.
fn input_quad(img: u32, k: u32, row: i32, col: i32) -> vec4<f32> {
    return vec4<f32>(input_at(img, k, row, col), input_at(img, k, row, col + 1),
                     input_at(img, k, row, col + 2), input_at(img, k, row, col + 3));
}

// Channel `n` of the output at (row, col) of image `img`: y's window, or dx (accumulating
// when asked).
fn store_output(img: u32, n: u32, row: u32, col: u32, value: f32) {
    if (GRAD_INPUT) {
        let at = ((img * CIN + n) * H + row) * W + col;
        // A branch, not select (which would read dx even when overwriting it).
        if (p.accumulate != 0u) {
            dst[at] = Act(f32(dst[at]) + value);
        } else {
            dst[at] = Act(value);
        }
    } else {
        dst[y_index(img, n, row, col)] = Act(value);
    }
}

