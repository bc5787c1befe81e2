//! Choosing each convolution pass's variant for a shape.
//!
//! Safe on any adapter: candidates are checked on a few images and timed on at most 16, so
//! no dispatch made while choosing runs near an OS GPU watchdog (Windows resets a GPU whose
//! work takes 2 s). On a GPU the GPU-shaped variant goes first, and a CPU-shaped register
//! variant is timed only if one image of the shape takes it little enough that a batch of
//! 1024 would stay far below that limit (the choice is kept for any batch).

use super::VariantChooser;
use crate::checks;
use crate::gpu::{Dispatch, Gpu, GpuError};
use crate::ops::conv2d::{Conv2d, ConvPass, ConvVariant, PIXELS_PER_SPLIT, PassBuffers};
use crate::shapes::Conv2dShape;
use anyhow::Result;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Told how far a long piece of work has come: (done, total), from any thread.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Images a candidate's result is checked on at least: enough to cover the batch index.
const CHECK_BATCH: usize = 2;
/// Images candidates are timed on.
const TIMING_BATCH: usize = 16;
/// Interleaved timing rounds (each candidate's fastest is kept).
const TIMING_ROUNDS: usize = 3;
/// On a GPU, a CPU-shaped variant that would take longer than this for a batch of
/// `SAFE_BATCH` (extrapolated from one image) is not tried.
const SAFE_BATCH_MS: f64 = 500.0;
const SAFE_BATCH: usize = 1024;

/// A convolution of `shape` with each pass's variant chosen by `chooser`.
pub fn pick(gpu: &Gpu, shape: Conv2dShape, chooser: &mut VariantChooser) -> Result<Conv2d> {
    let mut variants = [ConvVariant::Tiled; 3];
    for pass in ConvPass::ALL {
        variants[pass as usize] = pick_pass(gpu, &shape, pass, chooser)?;
    }
    Ok(Conv2d::with_variants(shape, variants))
}

/// `conv` with each pass cut by images where one dispatch of it would run past the device's
/// budget (`Gpu::dispatch_budget_ms`): from the pass's time on `TIMING_BATCH` images (as the
/// tuner times it, once a shape and variant in this process), the images that fit.
pub fn within_budget(
    gpu: &Gpu,
    mut conv: Conv2d,
    budget_ms: f64,
    chooser: &mut VariantChooser,
) -> Result<Conv2d, GpuError> {
    let shape = conv.shape;
    for pass in ConvPass::ALL {
        let variant = conv.variants[pass as usize];
        let timed = Conv2d::with_variants(shape.with_batch(shape.batch.min(TIMING_BATCH)), conv.variants)
            .planned_for(shape.batch);
        let ms_per_image = chooser.ms_per_image(&key(pass, &shape), variant.name(), || {
            Ok::<_, GpuError>(timed.time_pass(gpu, pass, TIMING_ROUNDS)? / timed.shape.batch as f64)
        })?;
        // At least one image a piece; a measurement of 0 (a clock too coarse) splits nothing.
        let images = (budget_ms / ms_per_image).floor().min(shape.batch as f64) as usize;
        conv = conv.split_by_images(pass, images, ms_per_image);
    }
    Ok(conv)
}

/// Compiles the candidates of every pass of `shapes` that `chooser` has no choice for yet,
/// several at a time, so that the choosing that follows compiles nothing:
/// - on a GPU, whose driver compiles a pipeline when it is created, by creating their
///   pipelines on every core (`create_in_parallel`);
/// - on a CPU adapter, which compiles a pipeline when it first runs it (lavapipe: about half
///   a second each, most of a first run's start), by checking half of them on a
///   `Gpu::compile_helper` device on another thread while this device checks the other
///   half; the driver's shader cache hands the helper's work to this device.
///
/// `progress(done, total)` follows it, in pipelines on a GPU and in passes on a CPU adapter.
pub fn compile_ahead(gpu: &Gpu, shapes: &[Conv2dShape], chooser: &VariantChooser, progress: Progress) {
    if gpu.info.device_type != wgpu::DeviceType::Cpu {
        return create_unknown(gpu, shapes, chooser, progress);
    }
    let items = unknown(gpu, shapes, chooser);
    if items.len() < 2 {
        return;
    }
    let Some(second) = gpu.compile_helper() else {
        return; // Compiled one at a time, then.
    };
    let done = AtomicUsize::new(0);
    // Every other pass to each device: neighbouring passes share shapes and kernels.
    let share = |gpu: &Gpu, offset: usize| {
        for (shape, pass, vs) in items.iter().skip(offset).step_by(2) {
            // What they compute is checked when they are chosen: here only compiling counts.
            let _ =
                checks::conv2d::verify(gpu, &shape.with_batch(check_batch(shape)), shape.batch, *pass, vs);
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, items.len());
        }
    };
    std::thread::scope(|scope| {
        scope.spawn(|| share(&second, 1));
        share(gpu, 0);
    });
}

/// Each pass of `shapes` that `chooser` has no choice for, with its candidates.
fn unknown(
    gpu: &Gpu,
    shapes: &[Conv2dShape],
    chooser: &VariantChooser,
) -> Vec<(Conv2dShape, ConvPass, Vec<ConvVariant>)> {
    let passes = shapes.iter().flat_map(|s| ConvPass::ALL.map(|pass| (*s, pass)));
    let unknown = passes.filter(|(s, pass)| chooser.known(&key(*pass, s)).is_none());
    unknown.map(|(s, pass)| (s, pass, candidates(gpu, &s, pass))).collect()
}

/// Creates the pipelines of every candidate of `unknown` passes on every core (a GPU's way
/// of compiling ahead). A candidate that does not compile is rejected when it is chosen.
pub fn create_unknown(gpu: &Gpu, shapes: &[Conv2dShape], chooser: &VariantChooser, progress: Progress) {
    create_variants(gpu, &unknown(gpu, shapes, chooser), progress);
}

/// Creates the pipelines of each pass's variants on every core, a failure kept in the
/// device's kernel cache for whoever asks for that pipeline next.
pub fn create_variants(gpu: &Gpu, passes: &[(Conv2dShape, ConvPass, Vec<ConvVariant>)], progress: Progress) {
    let pipelines: Vec<_> =
        passes.iter().flat_map(|(s, pass, vs)| vs.iter().map(move |v| (*s, *pass, *v))).collect();
    let done = AtomicUsize::new(0);
    crate::gpu::create_in_parallel(&pipelines, |(s, pass, v)| {
        let _ = Conv2d::with_variants(*s, [*v; 3]).compile(gpu, *pass);
        progress(done.fetch_add(1, Ordering::Relaxed) + 1, pipelines.len());
    });
}

/// The cache key: the pass and the shape without its batch, so the last, smaller batch of an
/// epoch shares the full batches' choice.
pub fn key(pass: ConvPass, shape: &Conv2dShape) -> String {
    format!("conv2d {} {}", pass.name(), shape.name())
}

fn pick_pass(
    gpu: &Gpu,
    shape: &Conv2dShape,
    pass: ConvPass,
    chooser: &mut VariantChooser,
) -> Result<ConvVariant> {
    let mut candidates = candidates(gpu, shape, pass);
    // A choice already made (a run's own, or the cache's) stays a candidate wherever the
    // device runs it, measured or not: a resumed run computes with the kernels it started
    // with, and two devices that share a run file with the same kernels, even where this
    // device's tuner would not measure that variant.
    let supported = checks::conv2d::variants_for(gpu, pass, shape);
    if let Some(known) = chooser.known(&key(pass, shape))
        && let Some(v) = supported.into_iter().find(|v| v.name() == known)
        && !candidates.contains(&v)
    {
        candidates.push(v);
    }
    // The chosen variant's pipelines are created at the batch it will run: one that does not
    // compile there is rejected, and the choice made again without it.
    loop {
        let chosen = choose_among(gpu, shape, pass, &candidates, chooser)?;
        match Conv2d::with_variants(*shape, [chosen; 3]).compile(gpu, pass) {
            Ok(()) => return Ok(chosen),
            Err(failed) => {
                chooser.reject(&key(pass, shape), chosen.name(), "does not compile", failed.to_string())
            }
        }
    }
}

/// The variant that beats `v` on a CPU adapter with subgroups wherever both run, if any.
fn outclassed_on_cpu(v: ConvVariant) -> Option<ConvVariant> {
    match v {
        ConvVariant::RegisterPlain => Some(ConvVariant::RegisterSubgroup),
        ConvVariant::RegisterPlainN16 => Some(ConvVariant::RegisterSubgroupN16),
        ConvVariant::RegisterSubgroup
        | ConvVariant::RegisterSubgroupN16
        | ConvVariant::Winograd4x4
        | ConvVariant::Tiled
        | ConvVariant::TiledN32
        | ConvVariant::TiledN16
        | ConvVariant::Direct => None,
    }
}

/// The variants the tuner considers for `pass` of `shape` on this device, in the order it
/// tries them.
pub fn candidates(gpu: &Gpu, shape: &Conv2dShape, pass: ConvPass) -> Vec<ConvVariant> {
    offer(gpu, shape, pass).0
}

/// The tuner's candidates (as `candidates`), and every other variant with why it is left out.
pub fn offer(
    gpu: &Gpu,
    shape: &Conv2dShape,
    pass: ConvPass,
) -> (Vec<ConvVariant>, Vec<(ConvVariant, String)>) {
    let on_cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
    let mut left_out = vec![];
    let mut candidates = vec![];
    for v in ConvVariant::ALL {
        match v.admits(gpu, pass, shape) {
            Ok(()) => candidates.push(v),
            Err(why) => left_out.push((v, why.to_string())),
        }
    }
    if on_cpu && gpu.features.subgroups && candidates.iter().any(|v| !v.is_gpu_shaped()) {
        // Measured on lavapipe (2-core Intel Xeon, 8 2x16d's 30 passes at batch 128, 2026-12-06):
        // the best GPU-shaped variant is 1.6-12x slower than the best register or Winograd
        // one on every pass, and measuring them made 217 of the 525 pipelines a first run compiled.
        // (Without subgroups `tiled` can win: 3x3 64->64 @8 forward 82 ms against
        // register_plain's 97, so they stay candidates there.) `selftest` still checks them.
        let why = "shaped for a GPU, and this CPU adapter has subgroups for the register kernels";
        left_out.extend(candidates.iter().filter(|v| v.is_gpu_shaped()).map(|&v| (v, why.to_string())));
        candidates.retain(|v| !v.is_gpu_shaped());
        // Measured the same way (bench ops --width 16 --all-variants, 2026-12-06): with
        // subgroups, register_plain(_n16) was 1.08-3.86x slower than its subgroup twin in all
        // 43 pairs. Where the faster one is offered, the other is not measured.
        let offered = candidates.clone();
        for v in offered.iter().copied() {
            if let Some(better) = outclassed_on_cpu(v).filter(|b| offered.contains(b)) {
                left_out.push((v, format!("{} beats it on a CPU adapter wherever both run", better.name())));
            }
        }
        candidates.retain(|v| outclassed_on_cpu(*v).is_none_or(|better| !offered.contains(&better)));
    }
    if !on_cpu {
        candidates.sort_by_key(|v| !v.is_gpu_shaped());
    }
    (candidates, left_out)
}

/// The chooser's choice among `candidates`: remembered, or checked and timed here.
fn choose_among(
    gpu: &Gpu,
    shape: &Conv2dShape,
    pass: ConvPass,
    candidates: &[ConvVariant],
    chooser: &mut VariantChooser,
) -> Result<ConvVariant> {
    let checked = shape.with_batch(check_batch(shape));
    let timed = shape.with_batch(shape.batch.min(TIMING_BATCH));
    chooser.choose(
        &key(pass, shape),
        candidates,
        ConvVariant::name,
        |vs| checks::conv2d::verify(gpu, &checked, shape.batch, pass, vs),
        |vs| {
            let buffers = PassBuffers::new(gpu, &timed);
            let mut groups = vec![];
            for &v in vs {
                groups.push(match timing_dispatches(gpu, shape, &timed, pass, v, &buffers) {
                    Ok(group) => Ok(group),
                    Err(GpuError::Compile(failed)) => Err(failed.to_string()),
                    Err(GpuError::Lost(lost)) => return Err(lost),
                });
            }
            let runnable = groups.iter().filter_map(|g| g.as_ref().ok().and_then(Option::as_ref));
            let refs: Vec<Vec<_>> = runnable.map(|g| g.iter().collect()).collect();
            let mut ms = gpu.time_interleaved(&refs, TIMING_ROUNDS)?.into_iter();
            Ok(groups
                .iter()
                .map(|g| match g {
                    Ok(Some(_)) => Ok(ms.next().expect("a time a group")),
                    Ok(None) => Ok(f64::INFINITY),
                    Err(why) => Err(why.clone()),
                })
                .collect())
        },
    )
}

/// The images a candidate is checked on: `CHECK_BATCH`, or enough to split the weight
/// gradient when the full batch splits it, so the checked kernels are the ones training runs.
fn check_batch(shape: &Conv2dShape) -> usize {
    let plane = shape.out_h * shape.out_w;
    let splitting = (PIXELS_PER_SPLIT / plane + 1).max(CHECK_BATCH);
    shape.batch.min(splitting)
}

/// The dispatches `v` is timed with on `timed`'s buffers, or none where timing it is not
/// safe (see `is_safe`).
fn timing_dispatches(
    gpu: &Gpu,
    shape: &Conv2dShape,
    timed: &Conv2dShape,
    pass: ConvPass,
    v: ConvVariant,
    buffers: &PassBuffers,
) -> Result<Option<Vec<Dispatch>>, GpuError> {
    let on_cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
    if !on_cpu && !is_safe(gpu, shape, pass, v)? {
        return Ok(None);
    }
    let conv = Conv2d::with_variants(*timed, [v; 3]).planned_for(shape.batch);
    Ok(Some(conv.pass_dispatches(gpu, pass, buffers)?))
}

/// Whether a GPU-shaped variant, or a CPU-shaped one that runs one image of `shape` fast
/// enough for `SAFE_BATCH` images to stay under `SAFE_BATCH_MS`.
fn is_safe(gpu: &Gpu, shape: &Conv2dShape, pass: ConvPass, v: ConvVariant) -> Result<bool, GpuError> {
    if v.is_gpu_shaped() {
        return Ok(true);
    }
    let one = Conv2d::with_variants(shape.with_batch(1), [v; 3]).planned_for(shape.batch);
    Ok(one.time_pass(gpu, pass, 1)? * SAFE_BATCH.max(shape.batch) as f64 <= SAFE_BATCH_MS)
}
