// fills: register_pass
// requires: Act, Block, COL4S, KS, PAD, ROWS, ROWS_MAX, STRIDE, accumulate_rows, accumulate_span,
// requires: block_array, block_value, columns, load_span, p
// provides: lane_vec4, load_in, run
// Gradient of a convolution with respect to its input, register-blocked like the forward
// kernel: each invocation computes ROWS input pixels of one row for 4 COL4S input channels
// (4 x 32, or 8 x 16 with N16), reducing over (kh, kw, output channel). A tap contributes
// when the output pixel it comes from exists: (i + PAD - k) divisible by STRIDE and inside
// the output.
//
// Variants: register_subgroup / register_plain (lanes_*.wgsl).
// Log (lavapipe, batch 128):
//   - Parity classes for stride 2 (workgroup z = row and column parity, so every pixel of an
//     invocation takes the same taps): 3x3 16->32 s2 @32, 77 -> 29 ms.
//   - Writes branch on `accumulate` instead of select(), which read the old value even when
//     overwriting: 3x3 32->64 s2 @32, 75 -> 56 ms.
//   - An accumulating pass skips parity classes no tap reaches: 1x1 16->16 s2 @32
//     accumulating 9.1-9.3 -> 6.1-7.5 ms; 1x1 32->32 s2 @16 4.4-4.5 -> 3.4-3.7 ms.
// Safety: indices into dy and wt are selected to 0 and the value masked outside the output
// or past the last channel; the pixel row is clamped; stores are guarded.

@group(0) @binding(1) var<storage, read> dy: array<Act>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;   // [cin][KS][KS][cout]
@group(0) @binding(3) var<storage, read_write> dx: array<Act>;

// Input channel 4 col4 + c of the weights at (kh, kw, co), `base` = (kh*KS + kw)*cout + co.
fn lane_weight(base: u32, col4: u32, c: u32) -> f32 {
    let ci = col4 * 4u + c;
    let ok = ci < p.cin;
    return select(0.0, wt[select(0u, ci * KS * KS * p.cout + base, ok)], ok);
}

// Four input channels of the weights at (kh, kw, co).
fn lane_vec4(base: u32, col4: u32) -> vec4<f32> {
    // Built whole: DX12's FXC rejects a vector component written through a loop index
    // (src/gpu/fxc.rs).
    return vec4<f32>(lane_weight(base, col4, 0u), lane_weight(base, col4, 1u), lane_weight(base, col4, 2u),
                     lane_weight(base, col4, 3u));
}

fn load_in(plane: u32, orow: i32, ocol: i32) -> f32 {
    let ok = orow >= 0 && ocol >= 0 && orow < i32(p.oh) && ocol < i32(p.ow);
    return select(0.0, f32(dy[select(0u, plane + u32(orow) * p.ow + u32(ocol), ok)]), ok);
}

// Where channel `co` of dy's window starts for image `img`.
fn dy_plane(img: u32, co: u32) -> u32 {
    return (img * p.y_channels + p.y_offset + co) * p.oh * p.ow;
}

// Whether some kernel row (or column) reaches input rows (columns) of parity `parity_class`.
fn class_has_taps(parity_class: u32) -> bool {
    for (var k = 0u; k < KS; k++) {
        if ((i32(parity_class + PAD) - i32(k)) % i32(STRIDE) == 0) {
            return true;
        }
    }
    return false;
}

// Input pixels fall into STRIDE x STRIDE parity classes (workgroup z): within a class, a tap
// either reaches every pixel or none, so taps that reach none are skipped for the whole
// workgroup, and the ROWS pixels of a block (STRIDE apart in a row) read ROWS neighbouring dy.
fn run(gx: u32, block: u32, parity: u32, lane: u32) {
    let row_class = parity / STRIDE;
    let col_class = parity % STRIDE;
    if (p.accumulate != 0u && !(class_has_taps(row_class) && class_has_taps(col_class))) {
        return;  // adds nothing: a whole workgroup's early exit (3/4 of a 1x1 stride-2 pass)
    }
    let rows = (p.h + STRIDE - 1u) / STRIDE;                    // rows of a class, at most
    let runs = ((p.w + STRIDE - 1u) / STRIDE + ROWS - 1u) / ROWS;  // blocks in a class's row
    let total = p.batch * rows * runs;
    let q = min(gx, total - 1u);
    let run = q % runs;
    let row_in_class = (q / runs) % rows;
    let img = q / (runs * rows);
    let ih = row_class + STRIDE * row_in_class;
    let iw0 = col_class + STRIDE * ROWS * run;
    let first_col4 = block * COL4S;

    var sums: Block;
    for (var kh = 0u; kh < KS; kh++) {
        let row_num = i32(row_class + PAD) - i32(kh);
        if (row_num % i32(STRIDE) != 0) {
            continue;
        }
        let orow = i32(row_in_class) + row_num / i32(STRIDE);
        if (KS == 3u && STRIDE == 1u) {
            // Tap kw reads dy from column ROWS run + PAD - kw on: taps 2, 1, 0 are the span
            // from ROWS run + PAD - 2 shifted by 0, 1, 2.
            let c0 = i32(ROWS * run + PAD) - 2;
            for (var co = 0u; co < p.cout; co++) {
                let plane = dy_plane(img, co);
                let row0 = kh * KS * p.cout + co;
                let bases = vec3<u32>(row0 + 2u * p.cout, row0 + p.cout, row0);
                accumulate_span(&sums, load_span(plane, orow, c0), bases, first_col4, lane);
            }
            continue;
        }
        for (var kw = 0u; kw < KS; kw++) {
            let col_num = i32(col_class + PAD) - i32(kw);
            if (col_num % i32(STRIDE) != 0) {
                continue;
            }
            let ocol = i32(ROWS * run) + col_num / i32(STRIDE);
            for (var co = 0u; co < p.cout; co++) {
                let plane = dy_plane(img, co);
                var a: array<f32, ROWS_MAX>;
                for (var j = 0u; j < ROWS; j++) {
                    a[j] = load_in(plane, orow, ocol + i32(j));
                }
                accumulate_rows(&sums, a, columns((kh * KS + kw) * p.cout + co, first_col4, lane));
            }
        }
    }
    if (gx >= total || ih >= p.h) {
        return;
    }
    var acc = block_array(sums);
    for (var l = 0u; l < COL4S; l++) {
        for (var c = 0u; c < 4u; c++) {
            let ci = (first_col4 + l) * 4u + c;
            for (var j = 0u; j < ROWS; j++) {
                let iw = iw0 + STRIDE * j;
                if (ci < p.cin && iw < p.w) {
                    let i = ((img * p.cin + ci) * p.h + ih) * p.w + iw;
                    let value = block_value(&acc, j, l, c);
                    // A branch, not select (which would read dx even when overwriting it).
                    if (p.accumulate != 0u) {
                        dx[i] = Act(f32(dx[i]) + value);
                    } else {
                        dx[i] = Act(value);
                    }
                }
            }
        }
    }
}
