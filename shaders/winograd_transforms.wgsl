// requires: H, W, WG_SIZE, channels_in, channels_out, flat_index, input_at, input_quad, kernel_at,
// requires: store_output, tile_at, tile_cols, tile_stride, tiles, u, v
// Winograd F(2x2, 3x3): the transforms into and out of the 4 x 4 domain (see
// winograd_shape.wgsl; bindings in winograd_io.wgsl). One invocation a kernel pair, or 4
// tiles of one channel. Safety: every invocation returns past its last item; output pixels
// past the image's last row or column are not stored.

// G g G^T for the 3 x 3 kernel g (rows g0..g2), G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1].
fn kernel_rows(g0: vec3<f32>, g1: vec3<f32>, g2: vec3<f32>) -> array<vec3<f32>, 4> {
    return array<vec3<f32>, 4>(g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2);
}
fn kernel_cols(r: vec3<f32>) -> vec4<f32> {
    return vec4<f32>(r.x, 0.5 * (r.x + r.y + r.z), 0.5 * (r.x - r.y + r.z), r.z);
}

@compute @workgroup_size(WG_SIZE)
fn transform_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let k_count = channels_in();
    let n_count = channels_out();
    if (i >= k_count * n_count) {
        return;
    }
    let k = i / n_count;
    let n = i % n_count;
    var g: array<vec3<f32>, 3>;
    for (var r = 0u; r < 3u; r++) {
        g[r] = vec3<f32>(kernel_at(k, n, r, 0u), kernel_at(k, n, r, 1u), kernel_at(k, n, r, 2u));
    }
    let rows = kernel_rows(g[0], g[1], g[2]);
    for (var a = 0u; a < 4u; a++) {
        let row = kernel_cols(rows[a]);
        for (var b = 0u; b < 4u; b++) {
            u[((a * 4u + b) * k_count + k) * n_count + n] = row[b];
        }
    }
}

// One row of the input patches of 4 tiles (j = 0..3, the vec4 components): column c of
// tile j's 4 x 4 patch in e[c]. Named vectors, not arrays, so they stay in registers.
struct PatchRow {
    e0: vec4<f32>,
    e1: vec4<f32>,
    e2: vec4<f32>,
    e3: vec4<f32>,
}

// Row `r` of the patches of tiles 4 q .. 4 q + 3 of channel k; the first of them is at
// `first` (tile_at).
fn patch_row(q: u32, k: u32, first: vec3<u32>, r: i32) -> PatchRow {
    let img = first.x;
    if (tile_cols() % 4u == 0u) {
        // The 4 tiles lie side by side in one tile row (every layer of the network): their
        // patches' rows are 10 neighbouring inputs, 10 loads instead of 16.
        let row = i32(2u * first.y) - 1 + r;
        let c0 = i32(2u * first.z) - 1;
        let lo = input_quad(img, k, row, c0);
        let mid = input_quad(img, k, row, c0 + 4);
        let hi = vec2<f32>(input_at(img, k, row, c0 + 8), input_at(img, k, row, c0 + 9));
        return PatchRow(vec4<f32>(lo.xz, mid.xz), vec4<f32>(lo.yw, mid.yw),
                        vec4<f32>(lo.z, mid.xz, hi.x), vec4<f32>(lo.w, mid.yw, hi.y));
    }
    // Tile j's row is column j; its transpose's columns are e0..e3. Built whole: DX12's FXC
    // rejects a vector component written through a loop index (src/gpu/fxc.rs).
    let m = transpose(mat4x4<f32>(tile_patch_row(q, k, 0u, r), tile_patch_row(q, k, 1u, r),
                                  tile_patch_row(q, k, 2u, r), tile_patch_row(q, k, 3u, r)));
    return PatchRow(m[0], m[1], m[2], m[3]);
}

// Row `r` of tile 4 q + j's 4 x 4 input patch (the last tile again past the end).
fn tile_patch_row(q: u32, k: u32, j: u32, r: i32) -> vec4<f32> {
    let at = tile_at(min(4u * q + j, tiles() - 1u));
    return input_quad(at.x, k, i32(2u * at.y) - 1 + r, i32(2u * at.z) - 1);
}

// The rows combined by B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
fn row_minus(a: PatchRow, b: PatchRow) -> PatchRow {
    return PatchRow(a.e0 - b.e0, a.e1 - b.e1, a.e2 - b.e2, a.e3 - b.e3);
}
fn row_plus(a: PatchRow, b: PatchRow) -> PatchRow {
    return PatchRow(a.e0 + b.e0, a.e1 + b.e1, a.e2 + b.e2, a.e3 + b.e3);
}

// Row a of B^T d B (then combined along the columns), stored: V's positions (a, 0..3).
fn store_transformed_row(a: u32, q: u32, k: u32, t: PatchRow) {
    let quads = tile_stride() / 4u;
    let k_count = channels_in();
    let at = (a * 4u * quads + q) * k_count + k;
    let step = quads * k_count;
    v[at] = t.e0 - t.e2;
    v[at + step] = t.e1 + t.e2;
    v[at + 2u * step] = t.e2 - t.e1;
    v[at + 3u * step] = t.e1 - t.e3;
}

// One invocation 4 consecutive tiles of one channel, each position stored as one vec4 (V's
// rows are tile_stride() long, so the 4 are aligned and inside them).
@compute @workgroup_size(WG_SIZE)
fn transform_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let k_count = channels_in();
    if (i >= tile_stride() / 4u * k_count) {
        return;
    }
    // Consecutive invocations take consecutive channels of 4 tiles: neighbouring writes.
    let k = i % k_count;
    let q = i / k_count;
    let at = tile_at(4u * q);
    let d0 = patch_row(q, k, at, 0);
    let d1 = patch_row(q, k, at, 1);
    let d2 = patch_row(q, k, at, 2);
    let d3 = patch_row(q, k, at, 3);
    store_transformed_row(0u, q, k, row_minus(d0, d2));
    store_transformed_row(1u, q, k, row_plus(d1, d2));
    store_transformed_row(2u, q, k, row_minus(d2, d1));
    store_transformed_row(3u, q, k, row_minus(d1, d3));
}

// Column b of M's 4 x 4 block (4 tiles a vec4) combined down by A^T = [1 1 1 0; 0 1 -1 -1]:
// rows 0 and 1 of A^T M.
struct OutColumn {
    top: vec4<f32>,
    bottom: vec4<f32>,
}

fn out_column(n: u32, q: u32, b: u32) -> OutColumn {
    let quads = tile_stride() / 4u;
    let n_count = channels_out();
    let m0 = m[(b * n_count + n) * quads + q];
    let m1 = m[((4u + b) * n_count + n) * quads + q];
    let m2 = m[((8u + b) * n_count + n) * quads + q];
    let m3 = m[((12u + b) * n_count + n) * quads + q];
    return OutColumn(m0 + m1 + m2, m1 - m2 - m3);
}

// One invocation 4 consecutive tiles of one output channel: M read as one vec4 a position.
@compute @workgroup_size(WG_SIZE)
fn transform_output(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let quads = tile_stride() / 4u;
    let n_count = channels_out();
    if (i >= quads * n_count) {
        return;
    }
    let n = i / quads;
    let q = i % quads;
    let c0 = out_column(n, q, 0u);
    let c1 = out_column(n, q, 1u);
    let c2 = out_column(n, q, 2u);
    let c3 = out_column(n, q, 3u);
    // (A^T M) A: pixel (r, c) of the 2 x 2 output of each of the 4 tiles.
    let y00 = c0.top + c1.top + c2.top;
    let y01 = c1.top - c2.top - c3.top;
    let y10 = c0.bottom + c1.bottom + c2.bottom;
    let y11 = c1.bottom - c2.bottom - c3.bottom;
    for (var j = 0u; j < 4u; j++) {
        let t = 4u * q + j;
        if (t >= tiles()) {
            return;
        }
        let at = tile_at(t);
        let out = mat2x2<f32>(vec2<f32>(y00[j], y10[j]), vec2<f32>(y01[j], y11[j]));   // [col][row]
        for (var c = 0u; c < 2u; c++) {
            for (var r = 0u; r < 2u; r++) {
                let row = 2u * at.y + r;
                let col = 2u * at.z + c;
                if (row < H && col < W) {
                    store_output(at.x, n, row, col, out[c][r]);
                }
            }
        }
    }
}
