//! The plain values every layer agrees on: shapes of operations, settings of the optimizer
//! and the shake mix, and the facts of CIFAR-10. No behaviour lives here, and this module
//! imports nothing from the crate, so every other layer may use it (the layers: `layers::LAYERS`).

/// CIFAR-10 has ten classes.
pub const CLASSES: usize = 10;
/// The classes in label order.
pub const CLASS_NAMES: [&str; CLASSES] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
/// CIFAR images are square, this many pixels a side.
pub const SIDE: usize = 32;
/// One image's bytes: a red plane, then green, then blue.
pub const IMAGE_BYTES: usize = 3 * SIDE * SIDE;

/// Per-channel mean and standard deviation on the 0-255 scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// The values the paper's code uses.
    pub const CIFAR10: Normalization = Normalization { mean: [125.3, 123.0, 113.9], std: [63.0, 62.1, 66.7] };

    pub fn mean64(&self) -> [f64; 3] {
        self.mean.map(|v| v as f64)
    }
    pub fn std64(&self) -> [f64; 3] {
        self.std.map(|v| v as f64)
    }
}

/// The element type a step stores activations and their gradients in. Arithmetic is f32 in
/// both: kernels widen what they load and narrow what they store (shaders/element_*.wgsl).
/// Weights, their gradients, the optimizer's state, batch-norm statistics, the pooled
/// features and the logits stay f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precision {
    #[default]
    F32,
    /// Half the bytes; needs a device with f16 in shaders (wgpu's SHADER_F16).
    F16,
}

impl Precision {
    pub const ALL: [Precision; 2] = [Precision::F32, Precision::F16];

    /// Bytes of one stored element.
    pub fn bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }

    /// The precision `name` names ("f32" or "f16").
    pub fn from_name(name: &str) -> Option<Precision> {
        Precision::ALL.into_iter().find(|p| p.name() == name)
    }

    /// What a shape's name ends with: nothing for f32, " f16".
    pub fn suffix(self) -> &'static str {
        match self {
            Precision::F32 => "",
            Precision::F16 => " f16",
        }
    }

    /// `v` as stored in this precision (round to nearest even).
    pub fn round(self, v: f64) -> f64 {
        match self {
            Precision::F32 => v as f32 as f64,
            Precision::F16 => half::f16::from_f64(v).to_f64(),
        }
    }
}

/// A 2-D convolution without bias. Output size is explicit: the projection shortcut's
/// shifted path pads only before the first row and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dShape {
    pub batch: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub ksize: usize,
    pub stride: usize,
    pub pad: usize,
    pub out_h: usize,
    pub out_w: usize,
    /// The element type of the input, the output and their gradients.
    pub precision: Precision,
}

impl Conv2dShape {
    /// A convolution padded by `pad` on every side.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        cin: usize,
        h: usize,
        w: usize,
        cout: usize,
        ksize: usize,
        stride: usize,
        pad: usize,
    ) -> Self {
        let out = |n: usize| (n + 2 * pad - ksize) / stride + 1;
        let (out_h, out_w) = (out(h), out(w));
        Conv2dShape { batch, cin, h, w, cout, ksize, stride, pad, out_h, out_w, precision: Precision::F32 }
    }

    /// The shortcut's second path: shift the input one pixel right and down (reading
    /// x[i-1][j-1], zero in the first row and column), subsample by `stride`, then 1x1.
    /// That is a 1x1 convolution padded by one before the image only.
    pub fn shifted_1x1(batch: usize, cin: usize, h: usize, w: usize, cout: usize, stride: usize) -> Self {
        Conv2dShape {
            batch,
            cin,
            h,
            w,
            cout,
            ksize: 1,
            stride,
            pad: 1,
            out_h: h.div_ceil(stride),
            out_w: w.div_ceil(stride),
            precision: Precision::F32,
        }
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.cin * self.h * self.w
    }
    pub fn output_len(&self) -> usize {
        self.batch * self.cout * self.out_h * self.out_w
    }
    pub fn weight_len(&self) -> usize {
        self.cout * self.cin * self.ksize * self.ksize
    }
    /// Multiply-adds of one pass, times two.
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.out_h * self.out_w) as f64
            * (self.cout * self.cin * self.ksize * self.ksize) as f64
    }
    /// The same convolution over another number of images.
    pub fn with_batch(&self, batch: usize) -> Self {
        Conv2dShape { batch, ..*self }
    }
    /// The same convolution over activations stored in `precision`.
    pub fn in_precision(&self, precision: Precision) -> Self {
        Conv2dShape { precision, ..*self }
    }
    /// "3x3 32->64 s2 @32": kernel, channels, stride (when not 1), input size (HxW when
    /// not square) and " f16" for f16 activations: everything but the batch.
    pub fn name(&self) -> String {
        let stride = if self.stride > 1 { format!(" s{}", self.stride) } else { String::new() };
        let shifted = if self.ksize == 1 && self.pad == 1 { " shifted" } else { "" };
        let size = if self.h == self.w { self.h.to_string() } else { format!("{}x{}", self.h, self.w) };
        let f16 = self.precision.suffix();
        format!("{k}x{k} {}->{}{stride}{shifted} @{size}{f16}", self.cin, self.cout, k = self.ksize)
    }
}

/// Where a convolution's output (forward) or its gradient (backward) sits in a wider
/// tensor: channels [offset, offset + cout) of `channels`. The projection shortcut
/// concatenates its two paths this way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelWindow {
    pub channels: usize,
    pub offset: usize,
}

impl ChannelWindow {
    pub fn whole(shape: &Conv2dShape) -> Self {
        ChannelWindow { channels: shape.cout, offset: 0 }
    }
}

/// Batch normalisation over NCHW, per channel, with an optional fused ReLU on the output;
/// momentum weights the new batch statistic (PyTorch's convention).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BnShape {
    pub batch: usize,
    pub channels: usize,
    /// H * W.
    pub plane: usize,
    pub relu: bool,
    pub momentum: f64,
    pub eps: f64,
    /// Images a ghost batch: training normalises each run of this many consecutive images
    /// (the last may be shorter) with its own statistics, as each of several GPUs normalises
    /// its share. The whole batch unless a run asks for fewer (`--bn-group`); 1 to `batch`.
    pub ghost: usize,
    /// The element type of the input, the output and their gradients.
    pub precision: Precision,
}

impl BnShape {
    pub fn new(batch: usize, channels: usize, plane: usize, relu: bool) -> Self {
        BnShape {
            batch,
            channels,
            plane,
            relu,
            momentum: 0.1,
            eps: 1e-5,
            ghost: batch,
            precision: Precision::F32,
        }
    }

    /// Ghost batches of `images` images (at least 1, at most the batch).
    pub fn with_ghost_batches(self, images: usize) -> Self {
        BnShape { ghost: images.clamp(1, self.batch.max(1)), ..self }
    }

    /// The same batch norm over activations stored in `precision`.
    pub fn in_precision(self, precision: Precision) -> Self {
        BnShape { precision, ..self }
    }

    pub fn ghosts(&self) -> usize {
        self.batch.div_ceil(self.ghost)
    }

    /// " ghost N" where there are ghost batches, for the checks' labels; else nothing.
    pub fn ghost_label(&self) -> String {
        if self.ghosts() > 1 { format!(" ghost {}", self.ghost) } else { String::new() }
    }

    /// Each ghost batch as a batch of its own, and the range of its elements.
    pub fn ghost_batches(&self) -> impl Iterator<Item = (BnShape, std::ops::Range<usize>)> + '_ {
        let image = self.channels * self.plane;
        (0..self.ghosts()).map(move |g| {
            let images = self.ghost.min(self.batch - g * self.ghost);
            let shape = BnShape { batch: images, ghost: images, ..*self };
            (shape, g * self.ghost * image..(g * self.ghost + images) * image)
        })
    }
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fully connected layer y = x W^T + b over a batch; W is [outputs][inputs].
/// Where a batch sits in a step's whole batch. One device holds the whole batch; with
/// several (`train --adapter 0,1`), each holds a share of consecutive images. A share's crops,
/// flips and shake coefficients are those its images get on one device (they are drawn by
/// the image's place in the whole batch), and its loss gradient is of the mean over the whole
/// batch, so that the devices' gradients add up to one device's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchShare {
    /// The share's first image in the whole batch.
    pub first_image: usize,
    /// Images of the whole batch.
    pub whole_batch: usize,
}

impl BatchShare {
    /// A batch that is a step's whole batch.
    pub fn whole(batch: usize) -> BatchShare {
        BatchShare { first_image: 0, whole_batch: batch }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearShape {
    pub batch: usize,
    pub inputs: usize,
    pub outputs: usize,
}

impl LinearShape {
    /// W then b, as one binding.
    pub fn param_len(&self) -> usize {
        self.outputs * (self.inputs + 1)
    }
}

/// The shake mix's forward coefficient: random alpha ("Shake") or 0.5 ("Even", also used
/// for evaluation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ForwardMode {
    Shake,
    Even,
}

/// The backward coefficient: a fresh random beta ("Shake"), 0.5 ("Even"), or beta = alpha
/// ("Keep").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BackwardMode {
    Shake,
    Even,
    Keep,
}

/// One coefficient per batch or per image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Level {
    Batch,
    Image,
}

/// SGD with momentum, optional Nesterov, weight decay (PyTorch's update); the learning
/// rate changes every step and travels separately.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdSettings {
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

impl SgdSettings {
    /// The paper's: Nesterov momentum 0.9, weight decay 1e-4.
    pub const PAPER: SgdSettings = SgdSettings { momentum: 0.9, weight_decay: 1e-4, nesterov: true };
}

/// Dynamic loss scaling, which training with f16 activations needs (their small gradients
/// would otherwise lose bits or vanish): PyTorch's GradScaler with its defaults. The scale
/// starts at `initial`, halves on a step whose gradients overflow (the step is skipped), down
/// to 1, and doubles after `growth_interval` clean steps in a row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScaling {
    pub initial: f32,
    pub growth_interval: u32,
}

impl LossScaling {
    /// GradScaler's: 2^16, doubling after 2000 clean steps.
    pub const PYTORCH: LossScaling = LossScaling { initial: 65536.0, growth_interval: 2000 };
}

/// Where loss scaling stands: the scale (a power of two; 1 without f16 activations), the
/// clean steps since it last changed, and the steps skipped for an overflow so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScale {
    pub scale: f32,
    pub clean_steps: u32,
    pub skipped: u32,
}

impl LossScale {
    /// No scaling: f32 activations.
    pub const NONE: LossScale = LossScale { scale: 1.0, clean_steps: 0, skipped: 0 };

    /// A run's start in `precision`.
    pub fn start(precision: Precision, scaling: &LossScaling) -> LossScale {
        match precision {
            Precision::F32 => LossScale::NONE,
            Precision::F16 => LossScale { scale: scaling.initial, ..LossScale::NONE },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_path_keeps_the_subsampled_size() {
        let s = Conv2dShape::shifted_1x1(2, 16, 32, 32, 8, 2);
        assert_eq!((s.out_h, s.out_w), (16, 16));
        let p1 = Conv2dShape::new(2, 16, 32, 32, 8, 1, 2, 0);
        assert_eq!((p1.out_h, p1.out_w), (16, 16));
        let odd = Conv2dShape::shifted_1x1(1, 3, 7, 5, 4, 2);
        assert_eq!((odd.out_h, odd.out_w), (4, 3));
    }
}
