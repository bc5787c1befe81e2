//! Winograd F(4x4, 3x3) (`winograd_4x4`): the kernels and the input into the transformed
//! domain, a GEMM per position register-blocked like `register_subgroup` (CPU adapters with
//! subgroups), the result back; the weight gradient by the transforms transposed. Shaders:
//! shaders/conv2d/winograd/ (see winograd_shape.wgsl for the layout of U, V and M; the GEMMs
//! and the layout take the tile's side as TILE, 4 here), with the register family's block and
//! lanes from shaders/conv2d/.
//!
//! Log (lavapipe, 2 cores, batch 128, `shakeshake bench ops`):
//! - F(2x2, 3x3) (16 GEMMs blocked like register_subgroup, 4 tiles x 32 channels; transforms
//!   4 tiles an invocation as vec4s, the shape as override constants): 128->128 @8 forward
//!   73.9 -> 54.3 ms, grad_input 76.9 -> 50.3 ms; 64->64 @16 about even; 32->32 @32 about even
//!   or slower (the transforms take 40 of its 95 ms), so the tuner keeps the direct kernels
//!   there. Its GEMM does 4/9 of the multiply-adds at about 0.65-0.8 of the direct kernels'
//!   rate per multiply-add. V as [xi][t/4][k][4] (the GEMM reads it in order) rather than
//!   [xi][k][t]: GEMM 10-15 % faster, once the transform took channels fastest across
//!   invocations so that its writes stay neighbouring.
//! - F(4x4, 3x3) (36 GEMMs, 6 x 6 transforms; errors 1e-6 of scale, F(2x2) 1e-7), and the
//!   weight gradient by its transposed transforms. Another machine (AMD EPYC, 2 cores;
//!   slower than the Xeon above), side by side: 3x3 32->32 @32 forward winograd 267 ms,
//!   winograd_4x4 180 ms, register_subgroup 287 ms; grad_weight register_subgroup ->
//!   winograd_4x4: 16->32 @32 183 -> 148 ms, 32->32 @32 331 -> 183, 64->64 @16 331 -> 132,
//!   128->128 @8 331 -> 113 (the 3->16 stem stays direct: 37 vs 93).
//! - F(4x4)'s input transform loading the 18 inputs 4 side-by-side tiles share in a patch
//!   row, not 24 (planes of 16 and 32 pixels; AMD EPYC, min of 3 alternating runs): 16->32
//!   @32 forward / grad_input / grad_weight 127.5 / 160.5 / 155.4 -> 120.1 / 148.8 / 151.2
//!   ms, 32->32 @32 187.8 / 185.4 / 191.8 -> 176.4 / 175.5 / 178.8, 64->64 @16 132.6 /
//!   129.4 / 139.2 -> 127.7 / 125.4 / 132.6; 128->128 @8 (2 tiles a row) unchanged. The same
//!   values: 10 steps of 8 2x16d on the same choices end on the same weights, bit for bit.
//! - The batch read from p rather than fixed per pipeline: see tiled.rs. The weight
//!   gradient's splits only in the pipeline that adds them (2026-12-06): the GEMM and the two
//!   transforms before it no longer depend on the batch. Reading the splits from p there too
//!   cost lavapipe 3x3 32->32 @16's weight gradient 32-45 ms against 20-24.
//! - The splits added by `reduce_splits`' in-place entry point, not inside the transform back
//!   (2026-12-07): a constant split count there (one pipeline a batch size) was unrolled
//!   inside the 36 positions at up to 32 splits, and lavapipe took 65 s to compile 3x3 8->8
//!   @32's at batch 64 (16 s with every variant's pipelines now). Speeds about even (lavapipe,
//!   width 16, ms before -> after, two alternated runs): batch 128 16->16 @32 34.4, 34.9 ->
//!   34.5, 33.9; 32->32 @16 14.9, 14.1 -> 14.0, 13.9; 64->64 @8 9.6, 9.3 -> 10.9, 10.6 (one
//!   more dispatch); batch 64 16->16 @32 17.9, 36.7 -> 34.7, 23.5. The sums come out in
//!   another rounding (lavapipe contracted the unrolled adds), so the learning check was
//!   run again (docs/results.md).
//! - F(2x2, 3x3) (`winograd`, winograd_transforms.wgsl) removed (2026-12-06): on lavapipe
//!   (Xeon, `bench ops --width 16 --all-variants`) it was 1.47-1.76x slower than F(4x4) on
//!   all 7 passes both ran, and slower on the EPYC too (3x3 32->32 @32 forward 267 against
//!   180 ms); it needs what F(4x4) needs, so nowhere was it the one to run.

use super::{
    Conv2d, ConvPass, ConvVariant, PARAMS, Rejection, SMALL_GRID, SumsTo, reduce_in_place_kernel,
    reduce_splits, require,
};
use crate::gpu::buffers::ANY_BINDING_ALIGNMENT_FLOATS;
use crate::gpu::shaders::module_in;
use crate::gpu::{Binding, CompileError, Dispatch, Gpu, Kernel, Slice};
use crate::shapes::Conv2dShape;

/// Bindings: the pass's input and output, the weights, and the scratch matrices.
pub(super) const SRC: Binding = Binding::new(1, "src");
pub(super) const WT: Binding = Binding::new(2, "wt");
pub(super) const DST: Binding = Binding::new(3, "dst");
pub(super) const U: Binding = Binding::new(4, "u");
pub(super) const V: Binding = Binding::new(5, "v");
pub(super) const M: Binding = Binding::new(6, "m");
pub(super) const WEIGHT_GRAD: Binding = Binding::new(7, "weight_grad");

/// Quads of tiles one split of the weight gradient sums: 2048 output pixels, as
/// `PIXELS_PER_SPLIT` (shaders/conv2d/winograd/winograd_shape.wgsl's SPLIT_QUADS).
pub(super) const SPLIT_QUADS: usize = 32;

/// F(4x4, 3x3) computes 3x3 convolutions at stride 1 and padding 1; U loads as vec4s of output channels; each scratch matrix is one
/// binding; the GEMM's positions (and splits) are workgroup layers.
pub(super) fn admits(
    v: ConvVariant,
    gpu: &Gpu,
    pass: ConvPass,
    shape: &Conv2dShape,
) -> Result<(), Rejection> {
    admits_shape(pass, shape)?;
    fits_device(v, gpu, pass, shape)
}

/// What `admits` asks of the shape alone.
pub(super) fn admits_shape(pass: ConvPass, shape: &Conv2dShape) -> Result<(), Rejection> {
    use Rejection::*;
    require(shape.ksize == 3 && shape.stride == 1 && shape.pad == 1, NotWinogradShape)?;
    let n = pass.gemm_n(shape);
    require(n.is_multiple_of(4), ChannelsNotMultipleOf4 { channels: n })
}

/// What `admits` asks of the device's limits.
fn fits_device(v: ConvVariant, gpu: &Gpu, pass: ConvPass, shape: &Conv2dShape) -> Result<(), Rejection> {
    use Rejection::*;
    let scratch = Scratch::new(pass, shape, v);
    let bytes = |floats: usize| (floats * 4) as u64;
    let (largest, binding) = (bytes(scratch.largest_floats()), gpu.limits.max_storage_buffer_binding_size);
    let limit = "maxStorageBufferBindingSize";
    require(largest <= binding, ScratchOverLimit { bytes: largest, limit, offered: binding })?;
    let (all, buffer) = (bytes(scratch.floats()), gpu.limits.max_buffer_size);
    require(all <= buffer, ScratchOverLimit { bytes: all, limit: "maxBufferSize", offered: buffer })?;
    let layers = (scratch.positions() * scratch.splits()) as u64;
    let most = u64::from(gpu.limits.max_compute_workgroups_per_dimension);
    require(layers <= most, TooManyLayers { layers, limit: most })
}

/// The GEMM's module (the transforms: `Conv2d::winograd_transforms`).
pub(super) fn module(pass: ConvPass) -> &'static str {
    match pass {
        ConvPass::GradWeight => "winograd_grad_weight_subgroup",
        ConvPass::Forward | ConvPass::GradInput => "winograd_gemm_subgroup",
    }
}

/// The GEMM's constants and grid: blocks of 4 tiles (of 4 input channels for the weight
/// gradient) by 32 channels, a layer per position and split.
pub(super) fn launch(conv: &Conv2d, pass: ConvPass, constants: &mut Vec<(&'static str, f64)>) -> [u32; 3] {
    let (s, variant) = (&conv.shape, conv.variant(pass));
    let layout = Scratch::new(pass, s, variant);
    let rows_of = |tiles: usize| if pass == ConvPass::GradWeight { s.cin } else { tiles }.div_ceil(4);
    let rows = rows_of(layout.tiles);
    let planned = Scratch::new(pass, &conv.planned().shape, variant);
    let wg = if rows_of(planned.tiles) < SMALL_GRID { 8 } else { 64 };
    constants.extend([("WG", wg as f64), ("N16", 0.0)]);
    constants.extend(self::constants(conv, pass));
    let layers = layout.positions() * layout.splits();
    [rows.div_ceil(wg) as u32, pass.gemm_n(s).div_ceil(variant.tile_n()) as u32, layers as u32]
}

/// shaders/conv2d/winograd/winograd_shape.wgsl's override constants (with the shape's).
fn constants(conv: &Conv2d, pass: ConvPass) -> Vec<(&'static str, f64)> {
    let tile = conv.variant(pass).winograd_tile().expect("a Winograd variant");
    let mut constants = vec![("GRAD_INPUT", grad_input_flag(pass)), ("TILE", tile as f64)];
    constants.extend(conv.shape_constants(pass));
    constants
}

/// shaders/conv2d/winograd/winograd_shape.wgsl's GRAD_INPUT override.
fn grad_input_flag(pass: ConvPass) -> f64 {
    f64::from(u8::from(pass == ConvPass::GradInput))
}

impl Conv2d {
    /// A Winograd pass's layout, and its three matrices' ranges of `scratch`.
    fn winograd_matrices<'a>(&self, pass: ConvPass, scratch: Option<Slice<'a>>) -> (Scratch, [Slice<'a>; 3]) {
        let layout = Scratch::new(pass, &self.shape, self.variant(pass));
        let scratch = scratch.expect("Winograd needs scratch");
        assert!(scratch.size >= (layout.floats() * 4) as u64, "scratch too small");
        let matrices = layout.offsets().map(|(first, count)| scratch.floats(first as u64, count as u64));
        (layout, matrices)
    }

    /// The transforms a Winograd `pass` runs around its GEMM (two before it, one after):
    /// entry points of shaders/conv2d/winograd/winograd4_transforms.wgsl.
    pub(super) fn winograd_transforms(&self, gpu: &Gpu, pass: ConvPass) -> Result<[Kernel; 3], CompileError> {
        let entries = match pass {
            ConvPass::GradWeight => ["transform_input", "transform_gradient", "finish_weight_gradient"],
            ConvPass::Forward | ConvPass::GradInput => {
                ["transform_weights", "transform_input", "transform_output"]
            }
        };
        let constants = constants(self, pass);
        let [a, b, c] = entries.map(|entry| {
            Kernel::new(gpu, module_in("winograd4_transforms", self.shape.precision), entry, &constants)
        });
        Ok([a?, b?, c?])
    }

    /// Creates the pipelines a Winograd pass runs beside its GEMM: the transforms, and the
    /// in-place reduction of a split weight gradient.
    pub(super) fn compile_winograd_rest(&self, gpu: &Gpu, pass: ConvPass) -> Result<(), CompileError> {
        self.winograd_transforms(gpu, pass)?;
        if Scratch::new(pass, &self.shape, self.variant(pass)).splits() > 1 {
            reduce_in_place_kernel(gpu)?;
        }
        Ok(())
    }

    /// A pass the Winograd way: the kernels and the input into the 6 x 6 domain, the 36
    /// GEMMs, the result back (shaders/conv2d/winograd/winograd_shape.wgsl), in `scratch`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn winograd(
        &self,
        gpu: &Gpu,
        pass: ConvPass,
        params: &wgpu::Buffer,
        src: Slice,
        w: Slice,
        dst: Slice,
        scratch: Option<Slice>,
    ) -> Result<Vec<Dispatch>, CompileError> {
        let (layout, [u, v, m]) = self.winograd_matrices(pass, scratch);
        let [transform_weights, transform_input, transform_output] = self.winograd_transforms(gpu, pass)?;
        let p = (PARAMS, params.into());
        let (k, n, t) = (layout.channels_in, layout.channels_out, layout.tiles);
        let (gemm, grid) = self.kernel(gpu, pass)?;
        Ok(vec![
            // The weight transform takes the whole shape from constants; the others read
            // the batch from the params.
            transform_weights.dispatch(gpu, &[(WT, w), (U, u)], gpu.grid_1d(k * n)),
            transform_input.dispatch(gpu, &[p, (SRC, src), (V, v)], gpu.grid_1d(t / 4 * k)),
            gemm.dispatch(gpu, &[p, (U, u), (V, v), (M, m)], grid),
            transform_output.dispatch(gpu, &[p, (DST, dst), (M, m)], gpu.grid_1d(t / 4 * n)),
        ])
    }

    /// The weight gradient the Winograd way: x and dy into the 6 x 6 domain, the GEMM in
    /// splits, then the splits added and transformed back (shaders/conv2d/winograd/winograd_grad_weight.wgsl).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn winograd_grad_weight(
        &self,
        gpu: &Gpu,
        params: &wgpu::Buffer,
        x: Slice,
        dy: Slice,
        dw: Slice,
        scratch: Option<Slice>,
    ) -> Result<Vec<Dispatch>, CompileError> {
        let pass = ConvPass::GradWeight;
        let (layout, [dy_t, v, partial]) = self.winograd_matrices(pass, scratch);
        let [transform_input, transform_gradient, finish] = self.winograd_transforms(gpu, pass)?;
        let p = (PARAMS, params.into());
        let (k, n, t) = (layout.channels_in, layout.channels_out, layout.tiles);
        let (gemm, grid) = self.kernel(gpu, pass)?;
        let mut dispatches = vec![
            transform_input.dispatch(gpu, &[p, (SRC, x), (V, v)], gpu.grid_1d(t / 4 * k)),
            transform_gradient.dispatch(gpu, &[p, (SRC, dy), (U, dy_t)], gpu.grid_1d(t * n / 4)),
            gemm.dispatch(gpu, &[p, (U, dy_t), (V, v), (M, partial)], grid),
        ];
        // The splits added in order by the reduction every split weight gradient uses (its
        // count read at run time), over the first: with the count a constant of the
        // transform's pipeline, one pipeline a batch size, lavapipe unrolled its loop inside
        // the 36 positions and took a minute to compile it at 32 splits.
        let sums = layout.positions() * k * n;
        if layout.splits() > 1 {
            dispatches.push(reduce_splits(gpu, partial, SumsTo::FirstSplit, sums, layout.splits())?);
        }
        let summed = partial.floats(0, sums as u64);
        dispatches.push(finish.dispatch(gpu, &[(WEIGHT_GRAD, dw), (M, summed)], gpu.grid_1d(k * n / 4)));
        Ok(dispatches)
    }
}

/// Where Winograd's three matrices (U, V, M; see shaders/conv2d/winograd/winograd_shape.wgsl) lie in the
/// scratch buffer, each at an offset a binding may start at.
pub(super) struct Scratch {
    /// The output tile's side (2 or 4).
    tile: usize,
    grad_weight: bool,
    channels_in: usize,
    channels_out: usize,
    tiles: usize,
}

impl Scratch {
    pub(super) fn new(pass: ConvPass, s: &Conv2dShape, variant: ConvVariant) -> Scratch {
        let tile = variant.winograd_tile().expect("a Winograd variant");
        let (channels_in, channels_out) =
            if pass == ConvPass::GradInput { (s.cout, s.cin) } else { (s.cin, s.cout) };
        // Rows of V and M round the tiles up to a multiple of 4 (shaders/conv2d/winograd/winograd_shape.wgsl).
        let tiles = (s.batch * s.h.div_ceil(tile) * s.w.div_ceil(tile)).next_multiple_of(4);
        Scratch { tile, grad_weight: pass == ConvPass::GradWeight, channels_in, channels_out, tiles }
    }

    /// Positions of the transformed domain: (tile + 2)^2, one GEMM each.
    fn positions(&self) -> usize {
        (self.tile + 2) * (self.tile + 2)
    }

    /// Splits of the weight gradient's GEMM (shaders/conv2d/winograd/winograd_grad_weight.wgsl).
    fn splits(&self) -> usize {
        if self.grad_weight { (self.tiles / 4).div_ceil(SPLIT_QUADS) } else { 1 }
    }

    /// (first float, floats) of U, V and M; for the weight gradient, of Dy, V and the
    /// GEMM's partial sums.
    fn offsets(&self) -> [(usize, usize); 3] {
        let xi = self.positions();
        let sizes = if self.grad_weight {
            [
                xi * self.channels_out * self.tiles,
                xi * self.channels_in * self.tiles,
                self.splits() * xi * self.channels_in * self.channels_out,
            ]
        } else {
            [
                xi * self.channels_in * self.channels_out,
                xi * self.channels_in * self.tiles,
                xi * self.channels_out * self.tiles,
            ]
        };
        let mut first = 0;
        sizes.map(|count| {
            let at = first;
            first += count.next_multiple_of(ANY_BINDING_ALIGNMENT_FLOATS);
            (at, count)
        })
    }

    pub(super) fn floats(&self) -> usize {
        let [.., (first, count)] = self.offsets();
        first + count
    }

    fn largest_floats(&self) -> usize {
        self.offsets().iter().map(|(_, count)| *count).max().unwrap_or(0)
    }
}
