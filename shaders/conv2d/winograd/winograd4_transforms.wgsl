// requires: CIN, COUT, H, W, WG_SIZE, channels_in, channels_out, flat_index, input_at,
// requires: input_quad, kernel_at, src, store_output, tile_at, tile_cols, tile_stride, tiles, u, v,
// requires: weight_grad, y_index
// Winograd F(4x4, 3x3): the transforms into and out of the 6 x 6 domain (see
// winograd_shape.wgsl; bindings in winograd_io.wgsl), with Lavin and Gray's matrices
// (interpolation points 0, 1, -1, 2, -2 and infinity). One invocation a kernel pair, or 4
// tiles of one channel, each position a vec4 of the 4 tiles. Safety:
// every invocation returns past its last item; tiles past the last are clamped to it when
// loading, and output pixels past the image's last row or column are not stored.

// G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1].
const G4 = array<vec3<f32>, 6>(
    vec3<f32>(0.25, 0.0, 0.0),
    vec3<f32>(-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0),
    vec3<f32>(-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0),
    vec3<f32>(1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0),
    vec3<f32>(1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0),
    vec3<f32>(0.0, 0.0, 1.0),
);

// U = G g G^T for one kernel pair: row a of G g, then its dot with row b of G.
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
    for (var a = 0u; a < 6u; a++) {
        let row = G4[a].x * g[0] + G4[a].y * g[1] + G4[a].z * g[2];
        for (var b = 0u; b < 6u; b++) {
            u[((a * 6u + b) * k_count + k) * n_count + n] = dot(row, G4[b]);
        }
    }
}

// Six values a position (of a patch row or column), each a vec4 of 4 tiles. Named vectors,
// not an array, so that they stay in registers.
struct Six {
    e0: vec4<f32>,
    e1: vec4<f32>,
    e2: vec4<f32>,
    e3: vec4<f32>,
    e4: vec4<f32>,
    e5: vec4<f32>,
}

// B^T d for six values d: B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
// 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1].
fn b_transpose(d: Six) -> Six {
    return Six(
        4.0 * d.e0 - 5.0 * d.e2 + d.e4,
        d.e3 + d.e4 - 4.0 * (d.e1 + d.e2),
        d.e4 - d.e3 + 4.0 * (d.e1 - d.e2),
        d.e4 - d.e2 + 2.0 * (d.e3 - d.e1),
        d.e4 - d.e2 + 2.0 * (d.e1 - d.e3),
        4.0 * d.e1 - 5.0 * d.e3 + d.e5,
    );
}

// Row `r` of the 6 x 6 input patches of tiles 4 q .. 4 q + 3 of channel k.
fn patch_row(q: u32, k: u32, r: u32) -> Six {
    if (tile_cols() % 4u == 0u) {
        // The 4 tiles lie side by side in one tile row (planes of 16 and 32 pixels; tiles()
        // is then a multiple of 4, so 4 q is a tile): their patches' rows overlap by 2, 18
        // neighbouring inputs, 18 loads instead of 24. Position c of tile j is input 4 j + c.
        let at = tile_at(4u * q);
        let row = i32(4u * at.y + r) - 1;
        let c0 = i32(4u * at.z) - 1;
        let a = input_quad(at.x, k, row, c0);
        let b = input_quad(at.x, k, row, c0 + 4);
        let c = input_quad(at.x, k, row, c0 + 8);
        let d = input_quad(at.x, k, row, c0 + 12);
        let e = vec2<f32>(input_at(at.x, k, row, c0 + 16), input_at(at.x, k, row, c0 + 17));
        return Six(vec4<f32>(a.x, b.x, c.x, d.x), vec4<f32>(a.y, b.y, c.y, d.y),
                   vec4<f32>(a.z, b.z, c.z, d.z), vec4<f32>(a.w, b.w, c.w, d.w),
                   vec4<f32>(b.x, c.x, d.x, e.x), vec4<f32>(b.y, c.y, d.y, e.y));
    }
    // Tile j's row is column j of the transposes, whose columns are e0..e5. Built whole:
    // DX12's FXC rejects a vector component written through a loop index (src/gpu/fxc.rs).
    let t0 = tile_patch_row(q, k, 0u, r);
    let t1 = tile_patch_row(q, k, 1u, r);
    let t2 = tile_patch_row(q, k, 2u, r);
    let t3 = tile_patch_row(q, k, 3u, r);
    let m = transpose(mat4x4<f32>(t0.first, t1.first, t2.first, t3.first));
    return Six(m[0], m[1], m[2], m[3], vec4<f32>(t0.last.x, t1.last.x, t2.last.x, t3.last.x),
               vec4<f32>(t0.last.y, t1.last.y, t2.last.y, t3.last.y));
}

// Row `r` of one tile's 6 x 6 input patch: inputs 0..3, then 4 and 5.
struct TileRow {
    first: vec4<f32>,
    last: vec2<f32>,
}

// Row `r` of tile 4 q + j's patch (the last tile again past the end).
fn tile_patch_row(q: u32, k: u32, j: u32, r: u32) -> TileRow {
    let at = tile_at(min(4u * q + j, tiles() - 1u));
    let row = i32(4u * at.y + r) - 1;
    let c0 = i32(4u * at.z) - 1;
    let last = vec2<f32>(input_at(at.x, k, row, c0 + 4), input_at(at.x, k, row, c0 + 5));
    return TileRow(input_quad(at.x, k, row, c0), last);
}

// Column b of B^T d B (the column of the row-transformed patch, transformed down), stored:
// V's positions (0..5, b).
fn store_transformed_column(b: u32, q: u32, k: u32, column: Six) {
    let t = b_transpose(column);
    let quads = tile_stride() / 4u;
    let k_count = channels_in();
    let at = (b * quads + q) * k_count + k;
    let step = 6u * quads * k_count;
    v[at] = t.e0;
    v[at + step] = t.e1;
    v[at + 2u * step] = t.e2;
    v[at + 3u * step] = t.e3;
    v[at + 4u * step] = t.e4;
    v[at + 5u * step] = t.e5;
}

// One invocation 4 consecutive tiles of one channel: each patch row transformed along its
// columns (d B), then each column of that down (B^T (d B)).
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
    let r0 = b_transpose(patch_row(q, k, 0u));
    let r1 = b_transpose(patch_row(q, k, 1u));
    let r2 = b_transpose(patch_row(q, k, 2u));
    let r3 = b_transpose(patch_row(q, k, 3u));
    let r4 = b_transpose(patch_row(q, k, 4u));
    let r5 = b_transpose(patch_row(q, k, 5u));
    store_transformed_column(0u, q, k, Six(r0.e0, r1.e0, r2.e0, r3.e0, r4.e0, r5.e0));
    store_transformed_column(1u, q, k, Six(r0.e1, r1.e1, r2.e1, r3.e1, r4.e1, r5.e1));
    store_transformed_column(2u, q, k, Six(r0.e2, r1.e2, r2.e2, r3.e2, r4.e2, r5.e2));
    store_transformed_column(3u, q, k, Six(r0.e3, r1.e3, r2.e3, r3.e3, r4.e3, r5.e3));
    store_transformed_column(4u, q, k, Six(r0.e4, r1.e4, r2.e4, r3.e4, r4.e4, r5.e4));
    store_transformed_column(5u, q, k, Six(r0.e5, r1.e5, r2.e5, r3.e5, r4.e5, r5.e5));
}

// Four output values a position, each a vec4 of 4 tiles.
struct Four {
    e0: vec4<f32>,
    e1: vec4<f32>,
    e2: vec4<f32>,
    e3: vec4<f32>,
}

// A^T m for six values m: A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
fn a_transpose(m: Six) -> Four {
    let sum = m.e1 + m.e2;
    let difference = m.e1 - m.e2;
    let sum2 = m.e3 + m.e4;
    let difference2 = m.e3 - m.e4;
    return Four(m.e0 + sum + sum2, difference + 2.0 * difference2, sum + 4.0 * sum2, difference + 8.0 * difference2 + m.e5);
}

// Column b of A^T M for output channel n, tiles 4 q .. 4 q + 3.
fn out_column(n: u32, q: u32, b: u32) -> Four {
    let quads = tile_stride() / 4u;
    let n_count = channels_out();
    let at = (b * n_count + n) * quads + q;
    let step = 6u * n_count * quads;
    return a_transpose(Six(m[at], m[at + step], m[at + 2u * step], m[at + 3u * step], m[at + 4u * step], m[at + 5u * step]));
}

// Output row r of the 4 tiles (its 4 columns in y), stored where it lies in the image.
fn store_row(n: u32, q: u32, r: u32, y: Four) {
    let columns = array<vec4<f32>, 4>(y.e0, y.e1, y.e2, y.e3);
    for (var j = 0u; j < 4u; j++) {
        let t = 4u * q + j;
        if (t >= tiles()) {
            return;
        }
        let at = tile_at(t);
        let row = 4u * at.y + r;
        for (var c = 0u; c < 4u; c++) {
            let col = 4u * at.z + c;
            if (row < H && col < W) {
                store_output(at.x, n, row, col, columns[c][j]);
            }
        }
    }
}

// One invocation 4 consecutive tiles of one output channel: M's columns combined down by
// A^T, then each row of that across.
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
    let c4 = out_column(n, q, 4u);
    let c5 = out_column(n, q, 5u);
    store_row(n, q, 0u, a_transpose(Six(c0.e0, c1.e0, c2.e0, c3.e0, c4.e0, c5.e0)));
    store_row(n, q, 1u, a_transpose(Six(c0.e1, c1.e1, c2.e1, c3.e1, c4.e1, c5.e1)));
    store_row(n, q, 2u, a_transpose(Six(c0.e2, c1.e2, c2.e2, c3.e2, c4.e2, c5.e2)));
    store_row(n, q, 3u, a_transpose(Six(c0.e3, c1.e3, c2.e3, c3.e3, c4.e3, c5.e3)));
}

// The weight gradient (see winograd_grad_weight.wgsl): the output gradient's 4 x 4 tiles
// into the 6 x 6 domain (Dy = A dy A^T, A = (A^T)^T), into U's place as Dy[xi][t][n], and
// the GEMM's splits back to the 3 x 3 kernels' gradient. Stride 1: the output gradient is
// H x W.

// dy of output channels 4 n4 .. 4 n4 + 3 at (row, col) of image img; zero outside the image
// and for the rounding's tiles (`live` false).
fn gradient_at(img: u32, n4: u32, row: u32, col: u32, live: bool) -> vec4<f32> {
    let ok = live && row < H && col < W;
    let r = select(0u, row, ok);
    let c = select(0u, col, ok);
    let n = 4u * n4;
    let g = vec4<f32>(f32(src[y_index(img, n, r, c)]), f32(src[y_index(img, n + 1u, r, c)]),
                      f32(src[y_index(img, n + 2u, r, c)]), f32(src[y_index(img, n + 3u, r, c)]));
    return select(vec4<f32>(0.0), g, ok);
}

// Row r of tile t's output gradient, 4 channels a vec4.
fn gradient_row(t: u32, n4: u32, r: u32) -> Four {
    let at = tile_at(min(t, tiles() - 1u));
    let live = t < tiles();
    let row = 4u * at.y + r;
    let col = 4u * at.z;
    return Four(gradient_at(at.x, n4, row, col, live), gradient_at(at.x, n4, row, col + 1u, live),
                gradient_at(at.x, n4, row, col + 2u, live), gradient_at(at.x, n4, row, col + 3u, live));
}

// A d for four values d: A = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1].
fn a_times(d: Four) -> Six {
    let even = d.e0 + d.e2;
    let odd = d.e1 + d.e3;
    let even4 = d.e0 + 4.0 * d.e2;
    let odd4 = 2.0 * d.e1 + 8.0 * d.e3;
    return Six(d.e0, even + odd, even - odd, even4 + odd4, even4 - odd4, d.e3);
}

// Column b of A dy A^T (positions (0..5, b)) for channels 4 n4 .. 4 n4 + 3 of tile t.
fn store_gradient_column(b: u32, t: u32, n4: u32, column: Six) {
    let values = array<vec4<f32>, 6>(column.e0, column.e1, column.e2, column.e3, column.e4, column.e5);
    let n4s = (COUT + 3u) / 4u;   // COUT is a multiple of 4 (rounded up so defaults validate)
    for (var a = 0u; a < 6u; a++) {
        let at = (((a * 6u + b) * tile_stride() + t) * n4s + n4) * 4u;
        u[at] = values[a].x;
        u[at + 1u] = values[a].y;
        u[at + 2u] = values[a].z;
        u[at + 3u] = values[a].w;
    }
}

// One invocation one tile (up to tile_stride()) and 4 output channels: rows across (dy A^T),
// then columns down. Consecutive invocations take consecutive channels: neighbouring writes.
@compute @workgroup_size(WG_SIZE)
fn transform_gradient(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let n4s = (COUT + 3u) / 4u;   // COUT is a multiple of 4 (rounded up so defaults validate)
    if (i >= tile_stride() * n4s) {
        return;
    }
    let n4 = i % n4s;
    let t = i / n4s;
    let r0 = a_times(gradient_row(t, n4, 0u));
    let r1 = a_times(gradient_row(t, n4, 1u));
    let r2 = a_times(gradient_row(t, n4, 2u));
    let r3 = a_times(gradient_row(t, n4, 3u));
    store_gradient_column(0u, t, n4, a_times(Four(r0.e0, r1.e0, r2.e0, r3.e0)));
    store_gradient_column(1u, t, n4, a_times(Four(r0.e1, r1.e1, r2.e1, r3.e1)));
    store_gradient_column(2u, t, n4, a_times(Four(r0.e2, r1.e2, r2.e2, r3.e2)));
    store_gradient_column(3u, t, n4, a_times(Four(r0.e3, r1.e3, r2.e3, r3.e3)));
    store_gradient_column(4u, t, n4, a_times(Four(r0.e4, r1.e4, r2.e4, r3.e4)));
    store_gradient_column(5u, t, n4, a_times(Four(r0.e5, r1.e5, r2.e5, r3.e5)));
}

// One invocation an input channel and 4 output channels: from the GEMM's sums S (its splits
// added by reduce_splits.wgsl), dL/dg = G^T S G, stored into the weights' layout
// [ci][kh][kw][co].
@compute @workgroup_size(WG_SIZE)
fn finish_weight_gradient(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let n4s = (COUT + 3u) / 4u;   // COUT is a multiple of 4 (rounded up so defaults validate)
    if (i >= CIN * n4s) {
        return;
    }
    let k = i / n4s;
    let n4 = i % n4s;
    var dw: array<array<vec4<f32>, 3>, 3>;   // [kernel row][kernel column]
    for (var a = 0u; a < 6u; a++) {
        // Row a of S G.
        var row: array<vec4<f32>, 3>;
        for (var b = 0u; b < 6u; b++) {
            let s = m[((a * 6u + b) * CIN + k) * n4s + n4];
            row[0] += G4[b].x * s;
            row[1] += G4[b].y * s;
            row[2] += G4[b].z * s;
        }
        for (var r = 0u; r < 3u; r++) {
            for (var c = 0u; c < 3u; c++) {
                dw[r][c] += G4[a][r] * row[c];
            }
        }
    }
    for (var r = 0u; r < 3u; r++) {
        for (var c = 0u; c < 3u; c++) {
            let at = ((k * 3u + r) * 3u + c) * COUT + 4u * n4;
            weight_grad[at] = dw[r][c].x;
            weight_grad[at + 1u] = dw[r][c].y;
            weight_grad[at + 2u] = dw[r][c].z;
            weight_grad[at + 3u] = dw[r][c].w;
        }
    }
}
