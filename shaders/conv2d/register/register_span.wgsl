// requires: Block, N16, accumulate, columns, load_in
// provides: accumulate_span, load_span
// The forward and input-gradient register kernels' loads for 3x3 kernels at stride 1; the
// pass supplies `load_in(plane, row, col)` (its input, zero outside the image) and lanes_*.wgsl
// supplies `columns`.
//
// The three taps of a kernel row read ROWS + 2 neighbouring inputs,
// shifted by one from tap to tap. Loading them once (6 loads for 4 pixels, 10 for 8, instead
// of 12 or 24) and shifting in registers saves the loads a CPU adapter pays most for. Named
// vectors, not an array, so they stay in registers.
struct Span {
    lo: vec4<f32>,
    mid: vec4<f32>,   // .zw only with N16
    hi: vec2<f32>,    // only with N16
}

fn load_span(plane: u32, r: i32, c0: i32) -> Span {
    var s: Span;
    s.lo = vec4<f32>(load_in(plane, r, c0), load_in(plane, r, c0 + 1), load_in(plane, r, c0 + 2),
                     load_in(plane, r, c0 + 3));
    s.mid = vec4<f32>(load_in(plane, r, c0 + 4), load_in(plane, r, c0 + 5), 0.0, 0.0);
    if (N16) {
        s.mid.z = load_in(plane, r, c0 + 6);
        s.mid.w = load_in(plane, r, c0 + 7);
        s.hi = vec2<f32>(load_in(plane, r, c0 + 8), load_in(plane, r, c0 + 9));
    }
    return s;
}

// acc += the span's rows shifted by 0, 1 and 2, times the columns of weight rows bases[0..2].
fn accumulate_span(acc: ptr<function, Block>, s: Span, bases: vec3<u32>, first_col4: u32, lane: u32) {
    accumulate(acc, s.lo, s.mid, columns(bases.x, first_col4, lane));
    accumulate(acc, vec4<f32>(s.lo.yzw, s.mid.x), vec4<f32>(s.mid.yzw, s.hi.x),
               columns(bases.y, first_col4, lane));
    accumulate(acc, vec4<f32>(s.lo.zw, s.mid.xy), vec4<f32>(s.mid.zw, s.hi),
               columns(bases.z, first_col4, lane));
}
