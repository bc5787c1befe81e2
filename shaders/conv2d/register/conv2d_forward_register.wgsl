// fills: register_pass
// requires: Act, Block, COL4S, KS, PAD, ROWS, ROWS_MAX, STRIDE, accumulate_rows, accumulate_span,
// requires: block_array, block_value, columns, load_span, p, y_index
// provides: lane_vec4, load_in, run
// Forward convolution, register-blocked: each invocation computes ROWS neighbouring output
// pixels of one row for 4 COL4S output channels (4 x 32, or 8 x 16 with N16; COL4S lanes x
// vec4, shared through `columns`), so every loaded value feeds many FMAs and no workgroup
// memory or barrier is needed. This is the shape llvmpipe-like CPU adapters want.
//
// Variants: register_subgroup / register_plain (the `columns` of lanes_*.wgsl); needs cout
// a multiple of 4 (weights load as vec4). Log: see src/ops/conv2d/register.rs (36-40 GFLOP/s at
// 32-128 channels on lavapipe; 16-channel layers take 8 x 16 blocks).
// Safety: `q` is clamped to the last row of pixels, `load_in` and `lane_vec4` select index 0
// and mask the value outside the input or past the last channel; stores are guarded.

@group(0) @binding(1) var<storage, read> x: array<Act>;
@group(0) @binding(2) var<storage, read> wt: array<vec4<f32>>;   // [cin*KS*KS][cout/4]
@group(0) @binding(3) var<storage, read_write> y: array<Act>;

// Four output channels of weight row `base` (= tap * cout/4); zero past the last channel.
fn lane_vec4(base: u32, col4: u32) -> vec4<f32> {
    let ok = col4 < p.cout / 4u;
    return select(vec4<f32>(0.0), wt[base + select(0u, col4, ok)], ok);
}

fn load_in(plane: u32, ih: i32, iw: i32) -> f32 {
    let ok = ih >= 0 && ih < i32(p.h) && iw >= 0 && iw < i32(p.w);
    return select(0.0, f32(x[select(0u, plane + u32(ih) * p.w + u32(iw), ok)]), ok);
}

fn run(gx: u32, block: u32, _split: u32, lane: u32) {
    let runs = (p.ow + ROWS - 1u) / ROWS;
    let total = p.batch * p.oh * runs;
    // Invocations past the end still run the loop: `columns` may need every lane.
    let q = min(gx, total - 1u);
    let ow0 = (q % runs) * ROWS;
    let oh = (q / runs) % p.oh;
    let img = q / (runs * p.oh);
    let ih0 = i32(oh * STRIDE) - i32(PAD);
    let iw0 = i32(ow0 * STRIDE) - i32(PAD);
    let first_col4 = block * COL4S;
    let cout4 = p.cout / 4u;

    var sums: Block;
    var plane = img * p.cin * p.h * p.w;
    var base = 0u;
    for (var ci = 0u; ci < p.cin; ci++) {
        for (var kh = 0u; kh < KS; kh++) {
            let ih = ih0 + i32(kh);
            if (KS == 3u && STRIDE == 1u) {
                let bases = vec3<u32>(base, base + cout4, base + 2u * cout4);
                accumulate_span(&sums, load_span(plane, ih, iw0), bases, first_col4, lane);
                base += 3u * cout4;
                continue;
            }
            for (var kw = 0u; kw < KS; kw++) {
                var a: array<f32, ROWS_MAX>;
                for (var j = 0u; j < ROWS; j++) {
                    a[j] = load_in(plane, ih, iw0 + i32(j * STRIDE + kw));
                }
                accumulate_rows(&sums, a, columns(base, first_col4, lane));
                base += cout4;
            }
        }
        plane += p.h * p.w;
    }
    if (gx >= total) {
        return;
    }
    var acc = block_array(sums);
    for (var l = 0u; l < COL4S; l++) {
        for (var c = 0u; c < 4u; c++) {
            let co = (first_col4 + l) * 4u + c;
            for (var j = 0u; j < ROWS; j++) {
                if (co < p.cout && ow0 + j < p.ow) {
                    y[y_index(img, co, oh, ow0 + j)] = Act(block_value(&acc, j, l, c));
                }
            }
        }
    }
}
