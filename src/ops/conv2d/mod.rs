//! 2-D convolution without bias: forward, input gradient and weight gradient, each in several
//! variants (`ConvVariant`), in four families, a file each: `register` (CPU adapters),
//! `tiled` and `direct` (GPUs), `winograd` (both transforms). This file holds what they share:
//! the passes, the variants and why one does not run a shape (`Rejection`), the bindings, and
//! `Conv2d`, which dispatches a shape's passes. CPU reference: `cpu::conv2d`; checks:
//! `checks::conv2d`; layout: `layout`; shaders: shaders/conv2d/ (a folder a family) (each
//! file's `// requires:` and `// provides:` lines say how they join).

mod direct;
mod pieces;
mod register;
mod tiled;
mod winograd;

use crate::gpu::shaders::module_in;
use crate::gpu::{Binding, CompileError, Dispatch, Gpu, GpuError, Kernel, ShaderInterface, Slice};
use crate::shapes::{ChannelWindow, Conv2dShape, Precision};
use crate::struct_layout;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvPass {
    Forward,
    GradInput,
    GradWeight,
}

impl ConvPass {
    pub const ALL: [ConvPass; 3] = [ConvPass::Forward, ConvPass::GradInput, ConvPass::GradWeight];

    /// The pass as an implicit GEMM C[M][N]: (M, N).
    pub(super) fn gemm_mn(self, s: &Conv2dShape) -> (usize, usize) {
        match self {
            ConvPass::Forward => (s.batch * s.out_h * s.out_w, s.cout),
            ConvPass::GradInput => (s.batch * s.h * s.w, s.cin),
            ConvPass::GradWeight => (s.cin * s.ksize * s.ksize, s.cout),
        }
    }

    /// N of the pass's GEMM: the channels each output pixel (or tap) has.
    pub fn gemm_n(self, s: &Conv2dShape) -> usize {
        self.gemm_mn(s).1
    }
    pub fn name(self) -> &'static str {
        match self {
            ConvPass::Forward => "forward",
            ConvPass::GradInput => "grad_input",
            ConvPass::GradWeight => "grad_weight",
        }
    }
}

/// How a pass is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvVariant {
    /// Register blocks of 4 pixels x 32 channels, a row of weights shared by subgroup
    /// broadcast: for CPU adapters (llvmpipe) with subgroups.
    RegisterSubgroup,
    /// The same blocks, each invocation loading the whole row: CPU adapters without subgroups.
    RegisterPlain,
    /// Register blocks of 8 pixels x 16 channels, for passes whose N is at most 16 (a
    /// 32-wide block would idle half its multiply-adds): with subgroups, and without.
    RegisterSubgroupN16,
    RegisterPlainN16,
    /// Implicit GEMM through workgroup-memory tiles of 64 x 64 outputs: for GPUs.
    Tiled,
    /// The same with tiles of 64 x 32 and 64 x 16, for passes whose N (output channels, or
    /// input channels for the input gradient) is at most 32 or 16.
    TiledN32,
    TiledN16,
    /// Direct convolution through workgroup memory (shaders/conv2d/direct/conv2d_direct.wgsl): tiles of
    /// 8 x 8 pixels by 32 channels or 16 x 8 by 16, for forward and stride-1 input gradients
    /// of at most 32 channels: for GPUs.
    Direct,
    /// Winograd F(4x4, 3x3) for 3x3 stride-1 passes (shaders/conv2d/winograd/): 6 x 6 transforms,
    /// then 36 GEMMs register-blocked like `RegisterSubgroup` (CPU adapters with subgroups):
    /// 36 multiply-adds where the direct convolution does 144. Also the weight gradient
    /// (shaders/conv2d/winograd/winograd_grad_weight.wgsl), by the same transforms transposed. (F(2x2, 3x3),
    /// `winograd`, was removed on 2026-12-06: F(4x4) beat it on every pass both ran.)
    Winograd4x4,
}

impl ConvVariant {
    pub const ALL: [ConvVariant; 9] = [
        ConvVariant::RegisterSubgroup,
        ConvVariant::RegisterPlain,
        ConvVariant::RegisterSubgroupN16,
        ConvVariant::RegisterPlainN16,
        ConvVariant::Tiled,
        ConvVariant::TiledN32,
        ConvVariant::TiledN16,
        ConvVariant::Direct,
        ConvVariant::Winograd4x4,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ConvVariant::RegisterSubgroup => "register_subgroup",
            ConvVariant::RegisterPlain => "register_plain",
            ConvVariant::RegisterSubgroupN16 => "register_subgroup_n16",
            ConvVariant::RegisterPlainN16 => "register_plain_n16",
            ConvVariant::Tiled => "tiled",
            ConvVariant::TiledN32 => "tiled_n32",
            ConvVariant::TiledN16 => "tiled_n16",
            ConvVariant::Direct => "direct",
            ConvVariant::Winograd4x4 => "winograd_4x4",
        }
    }

    /// Shaped for a GPU (workgroup-memory tiles) rather than a CPU adapter.
    pub fn is_gpu_shaped(self) -> bool {
        match self {
            ConvVariant::Tiled | ConvVariant::TiledN32 | ConvVariant::TiledN16 | ConvVariant::Direct => true,
            ConvVariant::RegisterSubgroup
            | ConvVariant::RegisterPlain
            | ConvVariant::RegisterSubgroupN16
            | ConvVariant::RegisterPlainN16
            | ConvVariant::Winograd4x4 => false,
        }
    }

    /// The N side of the variant's output tile or register block.
    fn tile_n(self) -> usize {
        match self {
            ConvVariant::Tiled => 64,
            ConvVariant::TiledN32
            | ConvVariant::RegisterSubgroup
            | ConvVariant::RegisterPlain
            | ConvVariant::Direct
            | ConvVariant::Winograd4x4 => 32,
            ConvVariant::TiledN16 | ConvVariant::RegisterSubgroupN16 | ConvVariant::RegisterPlainN16 => 16,
        }
    }

    /// Uses subgroup operations.
    fn needs_subgroups(self) -> bool {
        matches!(
            self,
            ConvVariant::RegisterSubgroup | ConvVariant::RegisterSubgroupN16 | ConvVariant::Winograd4x4
        )
    }

    /// The output tile's side of a Winograd variant (shaders/conv2d/winograd/winograd_shape.wgsl's TILE).
    pub fn winograd_tile(self) -> Option<usize> {
        match self {
            ConvVariant::Winograd4x4 => Some(4),
            ConvVariant::RegisterSubgroup
            | ConvVariant::RegisterPlain
            | ConvVariant::RegisterSubgroupN16
            | ConvVariant::RegisterPlainN16
            | ConvVariant::Tiled
            | ConvVariant::TiledN32
            | ConvVariant::TiledN16
            | ConvVariant::Direct => None,
        }
    }

    /// Whether this variant can run `pass` of `shape` on this device.
    pub fn supports(self, gpu: &Gpu, pass: ConvPass, shape: &Conv2dShape) -> bool {
        self.admits(gpu, pass, shape).is_ok()
    }

    /// Whether this variant can run `pass` of `shape` on this device, and if not, why.
    pub fn admits(self, gpu: &Gpu, pass: ConvPass, shape: &Conv2dShape) -> Result<(), Rejection> {
        require(!self.needs_subgroups() || gpu.features.subgroups, Rejection::NoSubgroups)?;
        require(shape.precision == Precision::F32 || gpu.features.f16, Rejection::NoF16)?;
        match self.family() {
            Family::Register => register::admits(self, pass, shape),
            Family::Tiled => tiled::admits(self, pass, shape),
            Family::Direct => direct::admits(self, pass, shape),
            Family::Winograd => winograd::admits(self, gpu, pass, shape),
        }
    }

    /// The shader module that runs `pass` of `shape` (shaders.rs's MODULES).
    fn module(self, pass: ConvPass, shape: &Conv2dShape) -> &'static str {
        match self.family() {
            Family::Register => register::module(self, pass, shape),
            Family::Tiled => tiled::module(pass, shape),
            Family::Direct => direct::module(pass),
            Family::Winograd => winograd::module(pass),
        }
    }

    /// The family whose file (src/ops/conv2d/<family>.rs) holds the variant.
    pub fn family(self) -> Family {
        match self {
            ConvVariant::RegisterSubgroup
            | ConvVariant::RegisterPlain
            | ConvVariant::RegisterSubgroupN16
            | ConvVariant::RegisterPlainN16 => Family::Register,
            ConvVariant::Tiled | ConvVariant::TiledN32 | ConvVariant::TiledN16 => Family::Tiled,
            ConvVariant::Direct => Family::Direct,
            ConvVariant::Winograd4x4 => Family::Winograd,
        }
    }
}

/// The kernel families, one file each under src/ops/conv2d/: what each variant of the family
/// admits, its shader module and its launch (override constants and grid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Register,
    Tiled,
    Direct,
    Winograd,
}

/// `Ok` where `holds`, else `why`.
fn require(holds: bool, why: Rejection) -> Result<(), Rejection> {
    if holds { Ok(()) } else { Err(why) }
}

/// A narrower tile or block only where the pass's N fits it.
fn fits_tile(variant: ConvVariant, pass: ConvPass, shape: &Conv2dShape) -> Result<(), Rejection> {
    let (n, tile) = (pass.gemm_n(shape), variant.tile_n());
    require(n <= tile, Rejection::WiderThanTile { n, tile })
}

/// Why a variant does not run a pass of a shape on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    NoSubgroups,
    NoF16,
    /// Channels the variant loads as vec4s (a forward's outputs, a Winograd pass's N).
    ChannelsNotMultipleOf4 {
        channels: usize,
    },
    /// N (channels each output pixel or tap has) wider than a narrow tile or block.
    WiderThanTile {
        n: usize,
        tile: usize,
    },
    NoWeightGradient,
    StridedInputGradient,
    WindowTooLarge {
        ksize: usize,
        stride: usize,
    },
    NotWinogradShape,
    ScratchOverLimit {
        bytes: u64,
        limit: &'static str,
        offered: u64,
    },
    TooManyLayers {
        layers: u64,
        limit: u64,
    },
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::NoSubgroups => write!(f, "it needs subgroups, which this device does not offer"),
            Rejection::NoF16 => write!(f, "its activations are f16, which this device's shaders lack"),
            Rejection::ChannelsNotMultipleOf4 { channels } => {
                write!(f, "it loads channels as vec4s, and {channels} is not a multiple of 4")
            }
            Rejection::WiderThanTile { n, tile } => {
                write!(f, "its tile is {tile} channels wide, narrower than the pass's {n}")
            }
            Rejection::NoWeightGradient => {
                write!(f, "it has no weight gradient (a reduction, not a convolution)")
            }
            Rejection::StridedInputGradient => write!(f, "its input gradient runs at stride 1 only"),
            Rejection::WindowTooLarge { ksize, stride } => {
                write!(f, "its patch holds windows up to 3x3 at stride 2, not {ksize}x{ksize} at {stride}")
            }
            Rejection::NotWinogradShape => {
                write!(f, "Winograd computes 3x3 convolutions at stride 1 and padding 1 only")
            }
            Rejection::ScratchOverLimit { bytes, limit, offered } => {
                write!(f, "its scratch needs {bytes} bytes, over the device's {limit} of {offered}")
            }
            Rejection::TooManyLayers { layers, limit } => {
                write!(f, "it needs {layers} workgroup layers, over the device's {limit}")
            }
        }
    }
}

/// Test hook: `SHAKESHAKE_BREAK_VARIANT=<variant name>` makes that variant ignore the last
/// input channel in every pass, as a driver that miscompiles it would: the tuner must find
/// it wrong and never choose it.
fn broken_variant() -> Option<&'static str> {
    static BROKEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BROKEN.get_or_init(|| std::env::var("SHAKESHAKE_BREAK_VARIANT").ok()).as_deref()
}

/// Test hook: `SHAKESHAKE_UNCOMPILABLE_VARIANT=<variant name>` gives that variant's kernels
/// an override constant their shader lacks, so that creating their pipelines fails as a
/// driver's compiler that rejects them would: the variant must be skipped, not the device.
fn uncompilable_variant() -> Option<&'static str> {
    static UNCOMPILABLE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    UNCOMPILABLE.get_or_init(|| std::env::var("SHAKESHAKE_UNCOMPILABLE_VARIANT").ok()).as_deref()
}

/// shaders/conv2d/conv2d_params.wgsl's ConvParams.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct ConvParams {
    batch: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    oh: u32,
    ow: u32,
    y_channels: u32,
    y_offset: u32,
    accumulate: u32,
    pixels_per_split: u32,
    _pad: u32,
}

const PARAMS: Binding = Binding::new(0, "p");
/// The pass's input: x (forward, weight gradient) or dy (input gradient).
const FORWARD_X: Binding = Binding::new(1, "x");
const GRAD_INPUT_DY: Binding = Binding::new(1, "dy");
const WEIGHTS: Binding = Binding::new(2, "wt");
const GRAD_WEIGHT_DY: Binding = Binding::new(2, "dy");
/// The pass's output: y, dx, or the weight gradient's partial sums.
const FORWARD_Y: Binding = Binding::new(3, "y");
const GRAD_INPUT_DX: Binding = Binding::new(3, "dx");
const GRAD_WEIGHT_PARTIAL: Binding = Binding::new(3, "partial");
const CONV_PARAMS: crate::gpu::interface::StructLayout = struct_layout!(ConvParams {
    batch,
    cin,
    h,
    w,
    cout,
    oh,
    ow,
    y_channels,
    y_offset,
    accumulate,
    pixels_per_split
});

pub const INTERFACES: [ShaderInterface; 6] = [
    ShaderInterface {
        modules: &[
            "conv2d_forward_register_subgroup",
            "conv2d_forward_register_plain",
            "conv2d_forward_tiled",
            "conv2d_forward_tiled_scalar",
            "conv2d_forward_direct",
        ],
        bindings: &[PARAMS, FORWARD_X, WEIGHTS, FORWARD_Y],
        structs: &[CONV_PARAMS],
        constants: &[],
    },
    ShaderInterface {
        modules: &[
            "conv2d_grad_input_register_subgroup",
            "conv2d_grad_input_register_plain",
            "conv2d_grad_input_tiled",
            "conv2d_grad_input_direct",
        ],
        bindings: &[PARAMS, GRAD_INPUT_DY, WEIGHTS, GRAD_INPUT_DX],
        structs: &[CONV_PARAMS],
        constants: &[],
    },
    ShaderInterface {
        modules: &[
            "conv2d_grad_weight_register_subgroup",
            "conv2d_grad_weight_register_plain",
            "conv2d_grad_weight_quads_subgroup",
            "conv2d_grad_weight_tiled",
        ],
        bindings: &[PARAMS, FORWARD_X, GRAD_WEIGHT_DY, GRAD_WEIGHT_PARTIAL],
        structs: &[CONV_PARAMS],
        constants: &[],
    },
    ShaderInterface {
        modules: &["winograd4_transforms"],
        bindings: &[
            PARAMS,
            winograd::SRC,
            winograd::WT,
            winograd::DST,
            winograd::U,
            winograd::V,
            winograd::M,
            winograd::WEIGHT_GRAD,
        ],
        structs: &[CONV_PARAMS],
        constants: &[("SPLIT_QUADS", winograd::SPLIT_QUADS as u32)],
    },
    ShaderInterface {
        modules: &["winograd_gemm_subgroup", "winograd_grad_weight_subgroup"],
        bindings: &[PARAMS, winograd::U, winograd::V, winograd::M],
        structs: &[CONV_PARAMS],
        constants: &[("SPLIT_QUADS", winograd::SPLIT_QUADS as u32)],
    },
    ShaderInterface {
        modules: &["reduce_splits"],
        bindings: &[REDUCE_PARAMS, REDUCE_PARTIAL, REDUCE_OUT, REDUCE_IN_PLACE],
        structs: &[struct_layout!(ReduceParams { len, splits })],
        constants: &[],
    },
];

/// Output pixels one weight-gradient split reduces: enough splits to keep every core (or
/// SM) busy, and sums short enough to stay accurate in f32. A multiple of 4, so that no
/// split cuts a quad of pixels (conv2d_grad_weight_quads.wgsl).
pub const PIXELS_PER_SPLIT: usize = 2048;

/// Register kernels and Winograd GEMMs on grids smaller than this use workgroups of 8, so
/// few invocations idle.
const SMALL_GRID: usize = 512;

/// A convolution of one shape with a chosen variant for each pass.
#[derive(Clone, Debug)]
pub struct Conv2d {
    pub shape: Conv2dShape,
    pub variants: [ConvVariant; 3],
    /// The batch whose grid the workgroup sizes are chosen for (see `planned_for`).
    planned_batch: usize,
    /// Each pass's pieces (see `split_by_images`): images a dispatch covers at most, and the
    /// milliseconds an image was measured to take.
    pieces: [pieces::Pieces; 3],
}

impl Conv2d {
    pub fn with_variants(shape: Conv2dShape, variants: [ConvVariant; 3]) -> Conv2d {
        let whole = pieces::Pieces { images: shape.batch, ms_per_image: 0.0 };
        Conv2d { shape, variants, planned_batch: shape.batch, pieces: [whole; 3] }
    }

    /// The same convolution with its workgroup sizes chosen for `batch` images, whatever
    /// its own batch: so the few images a variant is checked and timed on run the very
    /// pipelines the training batch will (a driver compiles each pipeline once; lavapipe
    /// took about half a second each).
    pub fn planned_for(self, batch: usize) -> Conv2d {
        Conv2d { planned_batch: batch, ..self }
    }

    /// This convolution at its planned batch (for choosing workgroup sizes).
    fn planned(&self) -> Conv2d {
        Conv2d::with_variants(self.shape.with_batch(self.planned_batch), self.variants)
    }

    fn variant(&self, pass: ConvPass) -> ConvVariant {
        self.variants[pass as usize]
    }

    /// The input channels `pass` is told of: one fewer for the variant the test hook breaks.
    fn cin_seen(&self, pass: ConvPass) -> usize {
        let broken = broken_variant().is_some_and(|name| name == self.variant(pass).name());
        self.shape.cin - usize::from(broken && self.shape.cin > 1)
    }

    /// shaders/conv2d/gemm_shape.wgsl's override constants: the shape, for kernels that decode
    /// indices by it often enough that dividing by constants pays for a pipeline per shape.
    fn shape_constants(&self, pass: ConvPass) -> [(&'static str, f64); 6] {
        let s = &self.shape;
        let names = ["CIN", "H", "W", "COUT", "OH", "OW"];
        let values = [self.cin_seen(pass), s.h, s.w, s.cout, s.out_h, s.out_w];
        std::array::from_fn(|i| (names[i], values[i] as f64))
    }

    fn params(&self, pass: ConvPass, window: ChannelWindow, accumulate: bool) -> ConvParams {
        let s = &self.shape;
        assert!(window.offset + s.cout <= window.channels, "channel window out of range");
        ConvParams {
            batch: s.batch as u32,
            cin: self.cin_seen(pass) as u32,
            h: s.h as u32,
            w: s.w as u32,
            cout: s.cout as u32,
            oh: s.out_h as u32,
            ow: s.out_w as u32,
            y_channels: window.channels as u32,
            y_offset: window.offset as u32,
            accumulate: accumulate as u32,
            pixels_per_split: self.pixels_per_split() as u32,
            _pad: 0,
        }
    }

    fn pixels_per_split(&self) -> usize {
        let s = &self.shape;
        PIXELS_PER_SPLIT.min(s.batch * s.out_h * s.out_w).max(1)
    }

    /// Weight-gradient splits; with more than one, partial sums need `scratch_floats`.
    pub fn splits(&self) -> usize {
        let s = &self.shape;
        (s.batch * s.out_h * s.out_w).div_ceil(self.pixels_per_split())
    }

    /// The split weight gradient's partial sums (0: not split): the part of the scratch
    /// buffer its passes bind, which must fit one binding.
    pub fn partial_floats(&self) -> usize {
        if self.splits() > 1 { self.splits() * self.shape.weight_len() } else { 0 }
    }

    /// Scratch the passes need (0: none): the weight gradient's partial sums, when split;
    /// Winograd's transformed matrices (each bound on its own, so their sum may pass the
    /// binding limit, but not the buffer limit).
    pub fn scratch_floats(&self) -> usize {
        let splits = self.partial_floats();
        let winograd = ConvPass::ALL
            .into_iter()
            .filter(|&pass| self.variant(pass).winograd_tile().is_some())
            .map(|pass| winograd::Scratch::new(pass, &self.shape, self.variant(pass)).floats())
            .max()
            .unwrap_or(0);
        splits.max(winograd)
    }

    fn kernel(&self, gpu: &Gpu, pass: ConvPass) -> Result<(Kernel, [u32; 3]), CompileError> {
        let (variant, s) = (self.variant(pass), &self.shape);
        assert!(variant.supports(gpu, pass, s), "{variant:?} cannot run {pass:?} of {s:?}");
        let (mut constants, grid) = self.launch(pass);
        if uncompilable_variant() == Some(variant.name()) {
            constants.push(("made_uncompilable_by_a_test_hook", 1.0));
        }
        Ok((Kernel::new(gpu, module_in(variant.module(pass, s), s.precision), "main", &constants)?, grid))
    }

    /// Creates every pipeline `pass` runs, dispatching nothing: the tuner's proof that the
    /// chosen variant compiles at the batch it will run (whose grid constants may differ from
    /// those of the few images it was checked on).
    pub fn compile(&self, gpu: &Gpu, pass: ConvPass) -> Result<(), CompileError> {
        self.kernel(gpu, pass)?;
        if self.variant(pass).winograd_tile().is_some() {
            self.compile_winograd_rest(gpu, pass)?;
        } else if pass == ConvPass::GradWeight && self.splits() > 1 {
            reduce_kernel(gpu)?;
        }
        Ok(())
    }

    /// The override constants and grid of a pass (no device needed: the requirements of a
    /// network are computed from them). Register grids are (blocks of 4 or 8 pixels or taps,
    /// blocks of 32 or 16 channels, splits); tiled grids are (M / 64, N / tile, splits).
    pub fn launch(&self, pass: ConvPass) -> (Vec<(&'static str, f64)>, [u32; 3]) {
        let (s, variant) = (&self.shape, self.variant(pass));
        let mut constants = vec![("KS", s.ksize as f64), ("STRIDE", s.stride as f64), ("PAD", s.pad as f64)];
        let grid = match variant.family() {
            Family::Tiled => tiled::launch(self, pass, &mut constants),
            Family::Direct => direct::launch(self, pass, &mut constants),
            Family::Winograd => winograd::launch(self, pass, &mut constants),
            Family::Register => register::launch(self, pass, &mut constants),
        };
        (constants, grid)
    }

    /// y (or channels `window` of a wider y) = conv(x, w). `scratch`: see `scratch_floats`.
    pub fn forward(
        &self,
        gpu: &Gpu,
        x: Slice,
        w: Slice,
        y: Slice,
        window: ChannelWindow,
        scratch: Option<Slice>,
    ) -> Result<Vec<Dispatch>, CompileError> {
        let pass = ConvPass::Forward;
        self.in_pieces(gpu, pass, window, (x, y), |piece, x, y| {
            let params = gpu.uniform("conv2d params", &piece.params(pass, window, false));
            if piece.variant(pass).winograd_tile().is_some() {
                return piece.winograd(gpu, pass, &params, x, w, y, scratch);
            }
            let (kernel, grid) = piece.kernel(gpu, pass)?;
            let bindings = [(PARAMS, (&params).into()), (FORWARD_X, x), (WEIGHTS, w), (FORWARD_Y, y)];
            Ok(vec![kernel.dispatch(gpu, &bindings, grid)])
        })
    }

    /// dx = (or += with `accumulate`) the input gradient, from dy (channels `window` of a
    /// wider tensor). `scratch`: see `scratch_floats`.
    #[allow(clippy::too_many_arguments)]
    pub fn grad_input(
        &self,
        gpu: &Gpu,
        dy: Slice,
        w: Slice,
        dx: Slice,
        window: ChannelWindow,
        accumulate: bool,
        scratch: Option<Slice>,
    ) -> Result<Vec<Dispatch>, CompileError> {
        let pass = ConvPass::GradInput;
        self.in_pieces(gpu, pass, window, (dy, dx), |piece, dy, dx| {
            let params = gpu.uniform("conv2d params", &piece.params(pass, window, accumulate));
            if piece.variant(pass).winograd_tile().is_some() {
                return piece.winograd(gpu, pass, &params, dy, w, dx, scratch);
            }
            let (kernel, grid) = piece.kernel(gpu, pass)?;
            let bindings =
                [(PARAMS, (&params).into()), (GRAD_INPUT_DY, dy), (WEIGHTS, w), (GRAD_INPUT_DX, dx)];
            Ok(vec![kernel.dispatch(gpu, &bindings, grid)])
        })
    }

    /// dw = the weight gradient (GPU layout). `scratch` holds `scratch_floats()` floats when
    /// the pixels are split; the splits are then added in order by a last dispatch. Cut into
    /// pieces of images, each piece writes its own splits' partial sums.
    pub fn grad_weight<'a>(
        &self,
        gpu: &Gpu,
        x: Slice<'a>,
        dy: Slice<'a>,
        dw: Slice<'a>,
        window: ChannelWindow,
        scratch: Option<Slice>,
    ) -> Result<Vec<Dispatch>, CompileError> {
        let pass = ConvPass::GradWeight;
        let params = |piece: &Conv2d| gpu.uniform("conv2d params", &piece.params(pass, window, false));
        if self.variant(pass).winograd_tile().is_some() {
            let mut dispatches = self.winograd_grad_weight(gpu, &params(self), x, dy, dw, scratch)?;
            dispatches[0].estimated_ms = self.estimated_ms(pass);
            return Ok(dispatches);
        }
        let bind = grad_weight_bindings;
        if self.splits() == 1 {
            let (kernel, grid) = self.kernel(gpu, pass)?;
            let params = params(self);
            let mut whole = kernel.dispatch(gpu, &bind(&params, x, dy, dw), grid);
            whole.estimated_ms = self.estimated_ms(pass);
            return Ok(vec![whole]);
        }
        let scratch = scratch.expect("a split weight gradient needs scratch");
        assert!(scratch.size >= (self.partial_floats() * 4) as u64, "scratch too small");
        // Only the partial sums' part of a scratch buffer shared by every convolution (and
        // by Winograd's matrices, which may be larger than one binding all together).
        let partial = scratch.floats(0, self.partial_floats() as u64);
        let s = &self.shape;
        let bytes = s.precision.bytes();
        let (x_bytes, dy_bytes) = (bytes * s.cin * s.h * s.w, bytes * window.channels * s.out_h * s.out_w);
        let pieces = self.pieces(gpu, pass, window);
        let mut dispatches = vec![];
        for (first, piece) in &pieces {
            let (images, split) = (piece.shape.batch, first * s.out_h * s.out_w / self.pixels_per_split());
            // Whole splits (the last piece's may be one shorter split, as the whole's last is).
            let whole_splits = piece.pixels_per_split() == self.pixels_per_split() || piece.splits() == 1;
            assert!(whole_splits, "a piece of {images} images cuts a split");
            let range = |slice, bytes| pieces::images_of(slice, *first, images, bytes, pieces.len());
            let piece_partial =
                partial.floats((split * s.weight_len()) as u64, (piece.splits() * s.weight_len()) as u64);
            let (kernel, grid) = piece.kernel(gpu, pass)?;
            let params = params(piece);
            let mut dispatch = kernel.dispatch(
                gpu,
                &bind(&params, range(x, x_bytes), range(dy, dy_bytes), piece_partial),
                grid,
            );
            dispatch.estimated_ms = piece.estimated_ms(pass);
            dispatches.push(dispatch);
        }
        dispatches.push(reduce_splits(gpu, partial, SumsTo::Range(dw), s.weight_len(), self.splits())?);
        Ok(dispatches)
    }

    /// The dispatches of one pass on `buffers` (made for this shape).
    pub fn pass_dispatches(
        &self,
        gpu: &Gpu,
        pass: ConvPass,
        b: &PassBuffers,
    ) -> Result<Vec<Dispatch>, CompileError> {
        let window = ChannelWindow::whole(&self.shape);
        let (x, w, y) = ((&b.x).into(), (&b.w).into(), (&b.y).into());
        match pass {
            ConvPass::Forward => self.forward(gpu, x, w, y, window, Some((&b.scratch).into())),
            ConvPass::GradInput => self.grad_input(gpu, y, w, x, window, false, Some((&b.scratch).into())),
            ConvPass::GradWeight => self.grad_weight(gpu, x, y, w, window, Some((&b.scratch).into())),
        }
    }

    /// Milliseconds of one pass on zeroed buffers of this shape (see `Gpu::time_ms`).
    pub fn time_pass(&self, gpu: &Gpu, pass: ConvPass, reps: usize) -> Result<f64, GpuError> {
        let buffers = PassBuffers::new(gpu, &self.shape);
        Ok(gpu.time_ms(&self.pass_dispatches(gpu, pass, &buffers)?.iter().collect::<Vec<_>>(), reps)?)
    }
}

/// Zeroed buffers for timing any pass of any variant of one shape (the input gradient
/// reads y's buffer as dy and writes x's as dx; the weight gradient writes w's).
pub struct PassBuffers {
    x: wgpu::Buffer,
    w: wgpu::Buffer,
    y: wgpu::Buffer,
    scratch: wgpu::Buffer,
}

impl PassBuffers {
    pub fn new(gpu: &Gpu, s: &Conv2dShape) -> PassBuffers {
        // Enough for any variant: the split weight gradient's, and Winograd's where it runs.
        let scratch = ConvVariant::ALL
            .into_iter()
            .filter(|v| ConvPass::ALL.into_iter().any(|pass| v.supports(gpu, pass, s)))
            .map(|v| Conv2d::with_variants(*s, [v; 3]).scratch_floats())
            .max()
            .unwrap_or(0);
        PassBuffers {
            x: gpu.activations("x", s.input_len(), s.precision),
            w: gpu.storage("w", s.weight_len()),
            y: gpu.activations("y", s.output_len(), s.precision),
            scratch: gpu.storage("scratch", scratch),
        }
    }
}

/// A weight-gradient kernel's bindings: the pass's params, x, dy, and the sums it writes.
fn grad_weight_bindings<'a>(
    params: &'a wgpu::Buffer,
    x: Slice<'a>,
    dy: Slice<'a>,
    out: Slice<'a>,
) -> [(Binding, Slice<'a>); 4] {
    [(PARAMS, params.into()), (FORWARD_X, x), (GRAD_WEIGHT_DY, dy), (GRAD_WEIGHT_PARTIAL, out)]
}

const REDUCE_PARAMS: Binding = Binding::new(0, "r");
const REDUCE_PARTIAL: Binding = Binding::new(1, "partial");
const REDUCE_OUT: Binding = Binding::new(2, "out");
const REDUCE_IN_PLACE: Binding = Binding::new(3, "parts");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ReduceParams {
    len: u32,
    splits: u32,
}

/// Where `reduce_splits` writes the sums of the splits.
pub enum SumsTo<'a> {
    /// A range of their own.
    Range(Slice<'a>),
    /// Over the first split: where the splits lie in a buffer the result shares (Winograd's
    /// scratch), which one dispatch cannot bind both read-only and writable.
    FirstSplit,
}

/// sums[i] = sum over s of partial[s * len + i], in order (shaders/conv2d/reduce_splits.wgsl).
pub fn reduce_splits(
    gpu: &Gpu,
    partial: Slice,
    to: SumsTo,
    len: usize,
    splits: usize,
) -> Result<Dispatch, CompileError> {
    let params = gpu.uniform("reduce params", &ReduceParams { len: len as u32, splits: splits as u32 });
    let params = (REDUCE_PARAMS, (&params).into());
    let (kernel, bindings) = match to {
        SumsTo::Range(out) => {
            (reduce_kernel(gpu)?, vec![params, (REDUCE_PARTIAL, partial), (REDUCE_OUT, out)])
        }
        SumsTo::FirstSplit => (reduce_in_place_kernel(gpu)?, vec![params, (REDUCE_IN_PLACE, partial)]),
    };
    Ok(kernel.dispatch(gpu, &bindings, gpu.grid_1d(len)))
}

fn reduce_in_place_kernel(gpu: &Gpu) -> Result<Kernel, CompileError> {
    Kernel::new(gpu, "reduce_splits", "in_place", &[])
}

fn reduce_kernel(gpu: &Gpu) -> Result<Kernel, CompileError> {
    Kernel::new(gpu, "reduce_splits", "main", &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::shaders::MODULES;

    /// The families' modules and shaders.rs's MODULES agree: each (variant, pass) of shapes
    /// that reach every module choice (cout a multiple of 4 or not, planes of quads or not)
    /// names a module that exists, that needs subgroups exactly when the variant does; and
    /// every convolution module is one that some (variant, pass) names, or a Winograd
    /// transform or the splits' reduction that `Conv2d` runs beside them.
    #[test]
    fn every_variant_names_a_module_and_every_module_is_named() {
        let shapes = [Conv2dShape::new(2, 8, 8, 8, 8, 3, 1, 1), Conv2dShape::new(2, 5, 7, 5, 6, 3, 1, 1)];
        let mut named = std::collections::BTreeSet::from([
            "winograd_transforms",
            "winograd4_transforms",
            "reduce_splits",
        ]);
        for v in ConvVariant::ALL {
            for pass in ConvPass::ALL {
                for shape in &shapes {
                    let admitted = match v.family() {
                        Family::Register => register::admits(v, pass, shape),
                        Family::Tiled => tiled::admits(v, pass, shape),
                        Family::Direct => direct::admits(v, pass, shape),
                        Family::Winograd => winograd::admits_shape(pass, shape),
                    };
                    if admitted.is_err() {
                        continue;
                    }
                    let module = v.module(pass, shape);
                    let def = MODULES
                        .iter()
                        .find(|m| m.name == module)
                        .unwrap_or_else(|| panic!("no module {module}"));
                    assert_eq!(def.needs_subgroups, v.needs_subgroups(), "{v:?} {pass:?}: {module}");
                    named.insert(module);
                }
            }
        }
        for def in MODULES.iter().filter(|m| m.checks_own_bounds) {
            assert!(named.contains(def.name), "no variant runs {}", def.name);
        }
    }
}
