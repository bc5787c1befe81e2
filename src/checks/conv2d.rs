//! Every convolution kernel variant, in every pass, against `cpu::conv2d` in f64, with the
//! activations in f32 and in f16 (the shape's `precision`).
//! Tolerance: 1e-4 of the largest reference value (f32 sums of up to a few thousand terms of
//! values in [-1, 1) stay well inside it); an output stored in f16 (the forward's y, the input
//! gradient) `F16_STORED`. The weight gradient is f32 in either precision, and its f16 inputs
//! are the reference's too (rounded before it sees them): 1e-4 holds for it.

use super::{Breadth, Check, Checked, compare, stored_tolerance, upload, upload_in, values, values_in};
use crate::cpu;
use crate::gpu::{CompileError, DeviceLost, Dispatch, Gpu, GpuError};
use crate::layout::{conv_weight_from_gpu, conv_weight_to_gpu};
use crate::ops::conv2d::{Conv2d, ConvPass, ConvVariant};
use crate::shapes::{ChannelWindow, Conv2dShape, Precision};

pub const TOLERANCE: f64 = 1e-4;

/// The tolerance of `pass` of `shape`: its output is stored in the shape's precision but for
/// the weight gradient's.
fn tolerance(shape: &Conv2dShape, pass: ConvPass) -> f64 {
    match pass {
        ConvPass::Forward | ConvPass::GradInput => stored_tolerance(TOLERANCE, shape.precision),
        ConvPass::GradWeight => TOLERANCE,
    }
}

/// Edge shapes: batch 1, odd sizes, stride 2, channel counts off the 32-wide blocks (20: a
/// 32-wide tile or block only partly used, past the 16-wide ones), 1x1, the shifted 1x1 of
/// the shortcut at strides 2 and 1 (there its input gradient reads dy one pixel on: padding
/// -1), and one big enough to split the weight gradient.
pub fn shapes() -> Vec<Conv2dShape> {
    vec![
        Conv2dShape::new(1, 3, 7, 5, 4, 3, 1, 1),
        Conv2dShape::new(2, 5, 9, 9, 12, 3, 2, 1),
        Conv2dShape::new(3, 20, 8, 8, 36, 3, 1, 1),
        Conv2dShape::new(2, 6, 5, 7, 6, 3, 1, 1),
        Conv2dShape::new(2, 6, 5, 7, 20, 1, 1, 0),
        Conv2dShape::new(2, 7, 9, 6, 8, 1, 2, 0),
        Conv2dShape::shifted_1x1(2, 7, 9, 6, 8, 2),
        Conv2dShape::shifted_1x1(2, 5, 6, 7, 4, 1),
        Conv2dShape::new(3, 4, 32, 32, 8, 3, 1, 1),
    ]
}

/// The variants that can run `pass` of `shape` on this device.
pub fn variants_for(gpu: &Gpu, pass: ConvPass, shape: &Conv2dShape) -> Vec<ConvVariant> {
    ConvVariant::ALL.into_iter().filter(|v| v.supports(gpu, pass, shape)).collect()
}

/// The variants `edge_shapes` does not check on this device, and why: each variant with each
/// reason it gave and the passes (of every edge shape) it gave it for.
pub fn not_offered(gpu: &Gpu) -> Vec<(ConvVariant, String, usize)> {
    let mut found: Vec<(ConvVariant, String, usize)> = vec![];
    for s in shapes() {
        for pass in ConvPass::ALL {
            for v in ConvVariant::ALL {
                let Err(why) = v.admits(gpu, pass, &s) else { continue };
                let why = why.to_string();
                match found.iter_mut().find(|(fv, fw, _)| *fv == v && *fw == why) {
                    Some((.., count)) => *count += 1,
                    None => found.push((v, why, 1)),
                }
            }
        }
    }
    found.sort_by_key(|(v, ..)| ConvVariant::ALL.iter().position(|a| a == v));
    found
}

/// Inputs of one shape: x, the weights (PyTorch's layout) and dy.
struct Data {
    x: Vec<f64>,
    w_oihw: Vec<f64>,
    dy: Vec<f64>,
    /// What dx holds before an accumulating input gradient, and zeros of its size.
    before: Vec<f64>,
    zeros: Vec<f64>,
}

impl Data {
    fn new(s: &Conv2dShape) -> Data {
        let p = s.precision;
        Data {
            x: values_in(s.input_len(), 1, p),
            w_oihw: values(s.weight_len(), 2),
            dy: values_in(s.output_len(), 3, p),
            before: values_in(s.input_len(), 4, p),
            zeros: vec![0.0; s.input_len()],
        }
    }

    fn reference(&self, s: &Conv2dShape, pass: ConvPass) -> Vec<f64> {
        match pass {
            ConvPass::Forward => cpu::conv2d::forward(s, &self.x, &self.w_oihw),
            ConvPass::GradInput => cpu::conv2d::grad_input(s, &self.dy, &self.w_oihw),
            ConvPass::GradWeight => cpu::conv2d::grad_weight(s, &self.x, &self.dy),
        }
    }
}

/// "3x3 5->12 s2 @9, batch 2".
fn text(s: &Conv2dShape) -> String {
    format!("{}, batch {}", s.name(), s.batch)
}

fn gpu_weights(gpu: &Gpu, s: &Conv2dShape, w: &[f64]) -> wgpu::Buffer {
    upload(gpu, &conv_weight_to_gpu(w, s.cout, s.cin, s.ksize))
}

/// How a pass is run. The network runs both: most convolutions on whole tensors, the
/// projection shortcut's two paths on channel windows of one tensor, and input gradients
/// added to what dx already holds where a tensor feeds two branches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Whole,
    /// y (forward) or dy (backward) as channels [1, 1 + cout) of a tensor of cout + 1
    /// channels, whose channel 0 holds other values; the input gradient added to dx.
    InWindow,
}

impl Form {
    fn window(self, s: &Conv2dShape) -> ChannelWindow {
        match self {
            Form::Whole => ChannelWindow::whole(s),
            Form::InWindow => ChannelWindow { channels: s.cout + 1, offset: 1 },
        }
    }
}

/// Channels [1, 1 + c) of a tensor of c + 1 channels holding `t` there and `filler` in
/// channel 0 (per image: `plane` values a channel).
fn widen(t: &[f64], batch: usize, c: usize, plane: usize, filler: f64) -> Vec<f64> {
    (0..batch)
        .flat_map(|n| {
            std::iter::repeat_n(filler, plane).chain(t[n * c * plane..(n + 1) * c * plane].iter().copied())
        })
        .collect()
}

/// Channels [1, 1 + c) of a tensor of c + 1 channels.
fn narrow(wide: &[f32], batch: usize, c: usize, plane: usize) -> Vec<f32> {
    (0..batch).flat_map(|n| wide[(n * (c + 1) + 1) * plane..(n + 1) * (c + 1) * plane].to_vec()).collect()
}

/// `pass` of `conv` on the GPU in `form` (the weight gradient in PyTorch's layout; the
/// input gradient added to `d.before` in a window).
fn run_pass(gpu: &Gpu, conv: &Conv2d, pass: ConvPass, d: &Data, form: Form) -> Result<Vec<f32>, GpuError> {
    let s = &conv.shape;
    let (batch, plane) = (s.batch, s.out_h * s.out_w);
    let window = form.window(s);
    let p = s.precision;
    let dy = match form {
        Form::Whole => upload_in(gpu, &d.dy, p),
        Form::InWindow => upload_in(gpu, &widen(&d.dy, batch, s.cout, plane, 7.0), p),
    };
    let w = gpu_weights(gpu, s, &d.w_oihw);
    let scratch = gpu.storage("scratch", conv.scratch_floats());
    let run = |dispatches: Result<Vec<Dispatch>, CompileError>| -> Result<(), GpuError> {
        Ok(gpu.try_run(&dispatches?.iter().collect::<Vec<_>>())?)
    };
    match pass {
        ConvPass::Forward => {
            let x = upload_in(gpu, &d.x, p);
            let len = batch * window.channels * plane;
            let y = gpu.activations("y", len, p);
            run(conv.forward(gpu, (&x).into(), (&w).into(), (&y).into(), window, Some((&scratch).into())))?;
            let y = gpu.try_read_activations(&y, len, p)?;
            Ok(match form {
                Form::Whole => y,
                Form::InWindow => narrow(&y, batch, s.cout, plane),
            })
        }
        ConvPass::GradInput => {
            let accumulate = form == Form::InWindow;
            let dx = upload_in(gpu, if accumulate { &d.before } else { &d.zeros }, p);
            let (dy_b, w_b, dx_b) = ((&dy).into(), (&w).into(), (&dx).into());
            run(conv.grad_input(gpu, dy_b, w_b, dx_b, window, accumulate, Some((&scratch).into())))?;
            Ok(gpu.try_read_activations(&dx, s.input_len(), p)?)
        }
        ConvPass::GradWeight => {
            let x = upload_in(gpu, &d.x, p);
            let dw = gpu.storage("dw", s.weight_len());
            run(conv.grad_weight(
                gpu,
                (&x).into(),
                (&dy).into(),
                (&dw).into(),
                window,
                Some((&scratch).into()),
            ))?;
            Ok(conv_weight_from_gpu(&gpu.try_read(&dw)?, s.cout, s.cin, s.ksize))
        }
    }
}

/// Each of `variants` on `pass` of `shape`, on whole tensors and in a channel window (the
/// input gradient then accumulating), against one reference: what the tuner asks before a
/// variant may be chosen for a shape. Workgroups are sized for `planned_batch` images, the
/// batch it will run (see `Conv2d::planned_for`). One check a variant, the worse of the two
/// forms.
pub fn verify(
    gpu: &Gpu,
    shape: &Conv2dShape,
    planned_batch: usize,
    pass: ConvPass,
    variants: &[ConvVariant],
) -> Result<Vec<Check>, DeviceLost> {
    let d = Data::new(shape);
    let want = d.reference(shape, pass);
    let want_accumulated: Vec<f64> = match pass {
        ConvPass::GradInput => want.iter().zip(&d.before).map(|(a, b)| a + b).collect(),
        _ => want.clone(),
    };
    let mut checks = vec![];
    let tolerance = tolerance(shape, pass);
    for &v in variants {
        let conv = Conv2d::with_variants(*shape, [v; 3]).planned_for(planned_batch);
        let check = |got: &[f32], want: &[f64]| {
            compare("conv2d", pass.name(), v.name(), &text(shape), got, want, tolerance)
        };
        let worse = || -> Result<Check, GpuError> {
            let whole = check(&run_pass(gpu, &conv, pass, &d, Form::Whole)?, &want);
            let window = check(&run_pass(gpu, &conv, pass, &d, Form::InWindow)?, &want_accumulated);
            Ok(if window.max_error.is_nan() || window.max_error > whole.max_error { window } else { whole })
        };
        checks.push(match worse() {
            Ok(check) => check,
            Err(GpuError::Compile(failed)) => {
                Check::not_compiled("conv2d", pass.name(), v.name(), &text(shape), tolerance, &failed)
            }
            Err(GpuError::Lost(lost)) => return Err(lost),
        });
    }
    Ok(checks)
}

/// Every pass of every variant on every edge shape.
pub fn edge_shapes(gpu: &Gpu, precision: Precision) -> Checked {
    check_edges(gpu, Breadth::Full, precision)
}

/// Every pass of every variant on one edge shape (`Breadth::Sampled`).
pub fn edge_shapes_sampled(gpu: &Gpu, precision: Precision) -> Checked {
    check_edges(gpu, Breadth::Sampled, precision)
}

fn check_edges(gpu: &Gpu, breadth: Breadth, precision: Precision) -> Checked {
    let mut checks = vec![];
    for (s, pass, variants) in edge_passes(gpu, breadth, precision) {
        checks.extend(verify(gpu, &s, s.batch, pass, &variants).unwrap_or_else(|e| panic!("{e}")));
    }
    Ok(checks)
}

/// The edge shapes' passes, each with the variants checked there: all that run it, or with
/// `Sampled` each variant's pass only at the last edge shape it runs (the largest, whose
/// weight gradient is split, at whose pipelines the full-batch check runs).
fn edge_passes(
    gpu: &Gpu,
    breadth: Breadth,
    precision: Precision,
) -> Vec<(Conv2dShape, ConvPass, Vec<ConvVariant>)> {
    let every = shapes().into_iter().map(|s| s.in_precision(precision));
    let every = every.flat_map(|s| ConvPass::ALL.map(|pass| (s, pass, variants_for(gpu, pass, &s))));
    let mut passes: Vec<_> = every.collect();
    if breadth == Breadth::Sampled {
        let mut seen = std::collections::HashSet::new();
        for (_, pass, variants) in passes.iter_mut().rev() {
            variants.retain(|v| seen.insert((*pass, *v)));
        }
        passes.retain(|(.., variants)| !variants.is_empty());
    }
    passes
}

/// Every pass of every variant that can be cut between images, run in pieces of as few
/// images as it allows, gives what the whole pass gives, bit for bit (tolerance 0): how a
/// pass longer than the device's dispatch budget runs (`Gpu::dispatch_budget_ms`). The edge
/// shapes, and the full batch whose weight gradient is split into partial sums. The pieces
/// run the whole pass's pipelines, so nothing new is compiled.
pub fn cut_by_images(gpu: &Gpu, precision: Precision) -> Checked {
    check_cuts(gpu, Breadth::Full, precision)
}

/// `cut_by_images` at the variants' sampled edge shapes (`Breadth::Sampled`).
pub fn cut_by_images_sampled(gpu: &Gpu, precision: Precision) -> Checked {
    check_cuts(gpu, Breadth::Sampled, precision)
}

fn check_cuts(gpu: &Gpu, breadth: Breadth, precision: Precision) -> Checked {
    let align = crate::gpu::buffers::binding_alignment_floats(&gpu.limits);
    let mut checks = vec![];
    // The full batch on whole tensors only: the edge shapes cover the window.
    let edge = edge_passes(gpu, breadth, precision)
        .into_iter()
        .map(|(s, pass, vs)| (s, pass, vs, &[Form::Whole, Form::InWindow][..]));
    let full = full_batch().in_precision(precision);
    let full_batch =
        (full, ConvPass::GradWeight, variants_for(gpu, ConvPass::GradWeight, &full), &[Form::Whole][..]);
    for (s, pass, variants, forms) in edge.chain([full_batch]) {
        let d = Data::new(&s);
        for v in variants {
            let whole = Conv2d::with_variants(s, [v; 3]);
            for &form in forms {
                if whole.image_step(pass, form.window(&s), align).is_err() {
                    continue;
                }
                let cut = whole.clone().split_by_images(pass, 1, 0.0);
                let both = || -> Result<_, GpuError> {
                    Ok((run_pass(gpu, &whole, pass, &d, form)?, run_pass(gpu, &cut, pass, &d, form)?))
                };
                let name = format!("{} in pieces of images", pass.name());
                checks.push(match both() {
                    Ok((whole, pieces)) => {
                        let want: Vec<f64> = whole.iter().map(|&v| v as f64).collect();
                        compare("conv2d", &name, v.name(), &text(&s), &pieces, &want, 0.0)
                    }
                    Err(GpuError::Compile(failed)) => {
                        Check::not_compiled("conv2d", &name, v.name(), &text(&s), 0.0, &failed)
                    }
                    Err(GpuError::Lost(lost)) => panic!("{lost}"),
                });
            }
        }
    }
    Ok(checks)
}

/// The full-batch weight gradient's shape.
fn full_batch() -> Conv2dShape {
    Conv2dShape::new(128, 4, 32, 32, 8, 3, 1, 1)
}
/// The projection shortcut's (images, input channels, height, width, output channels, stride).
const SHORTCUT: (usize, usize, usize, usize, usize, usize) = (2, 7, 9, 6, 16, 2);

/// A weight gradient reduced over a whole batch of 128 at 32x32 (131,072 pixels, so in
/// splits) stays within 1e-4 of the f64 sum. The last edge shape at another batch: the
/// batch is not in any convolution pipeline's constants, so it runs the pipelines already
/// compiled for that shape (a new machine compiles each once).
pub fn full_batch_grad_weight(gpu: &Gpu, precision: Precision) -> Checked {
    let s = full_batch().in_precision(precision);
    assert!(Conv2d::with_variants(s, [ConvVariant::Tiled; 3]).splits() > 1, "the case must split");
    Ok(verify(gpu, &s, s.batch, ConvPass::GradWeight, &variants_for(gpu, ConvPass::GradWeight, &s))
        .unwrap_or_else(|e| panic!("{e}")))
}

/// The projection shortcut on the GPU (two 1x1 convolutions, the second shifted, written into
/// halves of one buffer, and their gradients read back from those halves) against the
/// authors' subsample / shift / concat spelled out on the CPU. Its two paths are edge shapes
/// of `shapes()`, so they run pipelines already compiled for those.
pub fn projection_shortcut(gpu: &Gpu, precision: Precision) -> Checked {
    let (n, cin, h, w, cout, stride) = SHORTCUT;
    let half = cout / 2;
    let path1 = Conv2dShape::new(n, cin, h, w, half, 1, stride, 0).in_precision(precision);
    let path2 = Conv2dShape::shifted_1x1(n, cin, h, w, half, stride).in_precision(precision);
    let x = values_in(n * cin * h * w, 5, precision);
    let w1 = values(half * cin, 6);
    let w2 = values(half * cin, 7);
    let (oh, ow) = (path1.out_h, path1.out_w);
    let sub = |v: &[f64]| cpu::shortcut::subsample(v, n, cin, h, w, stride);
    let plain_1x1 = Conv2dShape::new(n, cin, oh, ow, half, 1, 1, 0);
    let y1 = cpu::conv2d::forward(&plain_1x1, &sub(&x), &w1);
    let y2 = cpu::conv2d::forward(&plain_1x1, &sub(&cpu::shortcut::shift(&x, n, cin, h, w)), &w2);
    let want = cpu::shortcut::concat(&y1, half, &y2, half, n, oh * ow);
    let dy = values_in(n * cout * oh * ow, 8, precision);
    // dx of the whole shortcut, through the CPU's explicit pieces.
    let dy1: Vec<f64> = (0..n).flat_map(|i| dy[i * cout * oh * ow..][..half * oh * ow].to_vec()).collect();
    let dy2: Vec<f64> =
        (0..n).flat_map(|i| dy[(i * cout + half) * oh * ow..][..half * oh * ow].to_vec()).collect();
    let want_dx: Vec<f64> = cpu::conv2d::grad_input(&path1, &dy1, &w1)
        .iter()
        .zip(cpu::conv2d::grad_input(&path2, &dy2, &w2))
        .map(|(a, b)| a + b)
        .collect();

    let shape = format!("{n}x{cin}x{h}x{w} -> {cout} stride {stride}");
    let (first, second) =
        (ChannelWindow { channels: cout, offset: 0 }, ChannelWindow { channels: cout, offset: half });
    let xb = upload_in(gpu, &x, precision);
    let dyb = upload_in(gpu, &dy, precision);
    let tolerance = stored_tolerance(TOLERANCE, precision);
    let (w1b, w2b) = (gpu_weights(gpu, &path1, &w1), gpu_weights(gpu, &path2, &w2));
    // Each pass with every variant that runs it on both paths (direct has a forward here,
    // no input gradient at stride 2). 1x1: no variant here needs scratch.
    let both =
        |pass| variants_for(gpu, pass, &path1).into_iter().filter(move |v| v.supports(gpu, pass, &path2));
    let mut checks = vec![];
    // A variant whose kernels do not compile is a failed check, as in `verify`.
    let mut run = |pass: &str,
                   v: ConvVariant,
                   dispatches: Result<Vec<Dispatch>, CompileError>,
                   out: &wgpu::Buffer,
                   want: &[f64]| {
        checks.push(match dispatches {
            Ok(dispatches) => {
                gpu.run(&dispatches.iter().collect::<Vec<_>>());
                let got = gpu.read_activations(out, want.len(), precision);
                compare("conv2d", pass, v.name(), &shape, &got, want, tolerance)
            }
            Err(failed) => Check::not_compiled("conv2d", pass, v.name(), &shape, tolerance, &failed),
        })
    };
    for v in both(ConvPass::Forward) {
        let (c1, c2) = (Conv2d::with_variants(path1, [v; 3]), Conv2d::with_variants(path2, [v; 3]));
        let y = gpu.activations("concat", n * cout * oh * ow, precision);
        let both_paths =
            c1.forward(gpu, (&xb).into(), (&w1b).into(), (&y).into(), first, None).and_then(|mut d| {
                d.extend(c2.forward(gpu, (&xb).into(), (&w2b).into(), (&y).into(), second, None)?);
                Ok(d)
            });
        run("shortcut forward", v, both_paths, &y, &want);
    }
    for v in both(ConvPass::GradInput) {
        let (c1, c2) = (Conv2d::with_variants(path1, [v; 3]), Conv2d::with_variants(path2, [v; 3]));
        let dx = gpu.activations("dx", x.len(), precision);
        let (dy, w1, w2, dx_b) = ((&dyb).into(), (&w1b).into(), (&w2b).into(), (&dx).into());
        let both_paths = c1.grad_input(gpu, dy, w1, dx_b, first, false, None).and_then(|mut d| {
            d.extend(c2.grad_input(gpu, dy, w2, dx_b, second, true, None)?);
            Ok(d)
        });
        run("shortcut grad_input", v, both_paths, &dx, &want_dx);
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full-batch and shortcut checks reuse edge shapes' pipelines: their shapes, but for
    /// the batch, are edge shapes.
    #[test]
    fn the_full_batch_and_shortcut_checks_run_edge_shapes() {
        let edge: Vec<Conv2dShape> = shapes().iter().map(|s| s.with_batch(1)).collect();
        let (n, cin, h, w, cout, stride) = SHORTCUT;
        for s in [
            full_batch(),
            Conv2dShape::new(n, cin, h, w, cout / 2, 1, stride, 0),
            Conv2dShape::shifted_1x1(n, cin, h, w, cout / 2, stride),
        ] {
            assert!(edge.contains(&s.with_batch(1)), "{s:?} is not an edge shape");
        }
    }
}
