//! A model on a device: parameters in GPU buffers and the graphs that train and evaluate it
//! (one for full batches, one for the last, smaller batch of an epoch, sharing buffers).

use super::data::Dataset;
use super::shares::Shares;
use crate::gpu::{DeviceLost, Gpu};
use crate::model::gpu_params::GpuParams;
use crate::model::gpu_step::StepGraph;
use crate::model::memory::{Memory, RunSize};
use crate::model::requirements::Requirements;
use crate::model::{Graph, Mode, ModelConfig, ParamStore};
use crate::ops::StepUniform;
use crate::ops::cross_entropy::{METRICS_LEN, STEP_COUNTER};
use crate::shapes::{BatchShare, IMAGE_BYTES, Normalization, Precision, SgdSettings};
use crate::tuning::VariantChooser;
use anyhow::{Result, bail};

/// A full-batch graph and, when the data does not divide into full batches, one for the rest.
pub struct Graphs {
    pub full: StepGraph,
    pub rest: Option<StepGraph>,
}

impl Graphs {
    fn new(s: &GraphSettings, mode: Mode, batch: usize, images: usize) -> Result<Graphs> {
        let build = |n, buffers_of| {
            let mut graph = match (mode, s.device_share) {
                (Mode::Train, Some((shares, device))) => {
                    let share = shares.split(n)[device].clone();
                    let whole = BatchShare { first_image: share.start, whole_batch: n };
                    Graph::build(s.config, share.len(), mode).as_share(whole)
                }
                _ => Graph::build(s.config, n, mode),
            }
            .with_ghost_batches(s.bn_group)
            .in_precision(s.precision);
            graph.augment &= s.augment;
            let chooser = &mut s.chooser.borrow_mut();
            StepGraph::new(s.gpu, &graph, s.params, &s.norm, &s.sgd, chooser, buffers_of)
        };
        let full = build(batch.min(images), None)?;
        let rest_size = images % batch;
        let rest = (images > batch && rest_size > 0).then(|| build(rest_size, Some(&full))).transpose()?;
        Ok(Graphs { full, rest })
    }

    /// The graph for a batch of `n` images (its share of them, on one of several devices).
    pub fn for_batch(&self, n: usize) -> &StepGraph {
        if n == self.full.whole_batch {
            &self.full
        } else {
            self.rest.as_ref().filter(|g| g.whole_batch == n).expect("a graph for every batch size")
        }
    }
}

struct GraphSettings<'a> {
    gpu: &'a Gpu,
    config: ModelConfig,
    params: &'a GpuParams,
    norm: Normalization,
    sgd: SgdSettings,
    augment: bool,
    bn_group: Option<usize>,
    device_share: Option<(&'a Shares, usize)>,
    precision: Precision,
    chooser: &'a std::cell::RefCell<VariantChooser>,
}

pub struct Session {
    pub gpu: Gpu,
    pub config: ModelConfig,
    pub params: GpuParams,
    pub norm: Normalization,
    /// Random crops and flips when training (on unless turned off).
    pub augment: bool,
    /// Training runs keep the kernel variants they chose in this file, so a resumed run
    /// computes with the same kernels (and so the same rounding).
    pub variants_file: Option<std::path::PathBuf>,
    /// The optimizer of training graphs (evaluation graphs run none).
    pub sgd: SgdSettings,
    /// Images a training batch norm's ghost batch (`--bn-group`); `None`: the whole batch.
    pub bn_group: Option<usize>,
    /// With several devices, how batches are split among them, and which device this is:
    /// its training graphs run its share of each batch (see `train::replicas`).
    pub device_share: Option<(Shares, usize)>,
    /// What its graphs store activations in (f32 unless set).
    pub precision: Precision,
}

/// Accuracy on a data set, overall and per class, and the mean loss.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Evaluation {
    pub accuracy: f64,
    pub per_class: Vec<f64>,
    pub loss: f64,
    pub images: usize,
}

impl Session {
    pub fn new(
        gpu: Gpu,
        config: ModelConfig,
        store: &ParamStore,
        momentum: Option<&[Vec<f32>]>,
    ) -> Result<Session> {
        check_fits(&gpu, config, 1, Mode::Eval, Precision::F32)?;
        let params = GpuParams::upload(&gpu, store, momentum);
        Ok(Session {
            gpu,
            config,
            params,
            norm: Normalization::CIFAR10,
            augment: true,
            variants_file: None,
            sgd: SgdSettings::PAPER,
            bn_group: None,
            device_share: None,
            precision: Precision::F32,
        })
    }

    /// The kernel cache's choices, with this run's own (see `variants_file`).
    fn chooser(&self) -> VariantChooser {
        match &self.variants_file {
            Some(file) => VariantChooser::for_adapter(&self.gpu).with_run_file(file),
            None => VariantChooser::for_adapter(&self.gpu),
        }
    }

    /// Chooses every convolution's kernels for a run (measuring them the first time), and
    /// returns the device memory its graphs will take with them, before any is allocated.
    /// `compiled(done, total)` follows the compiling of the candidates ahead of choosing
    /// (`compile_ahead`), and `chosen(done, shapes)` the first graph's convolution shapes
    /// (the other graphs' choices are then known).
    pub fn prepare(
        &self,
        run: RunSize,
        compiled: crate::tuning::conv2d::Progress,
        mut chosen: impl FnMut(usize, usize),
    ) -> Result<Memory> {
        let mut chooser = self.chooser();
        let on_gpu = self.gpu.info.device_type != wgpu::DeviceType::Cpu;
        let mut first = true;
        Memory::of_run(self.config, run, on_gpu, &mut |graph| {
            let shapes = graph.conv_shapes();
            crate::tuning::conv2d::compile_ahead(&self.gpu, &shapes, &chooser, compiled);
            let mut scratch = 0;
            for (done, shape) in shapes.iter().enumerate() {
                let conv = crate::tuning::conv2d::pick(&self.gpu, *shape, &mut chooser)?;
                scratch = scratch.max(conv.scratch_floats());
                if first {
                    chosen(done + 1, shapes.len());
                }
            }
            first = false;
            Ok(Some(scratch))
        })
    }

    /// `built` (a run's graphs), unless the device ran out of memory allocating them: then
    /// an error naming what the run needs, what the device had given, and the largest
    /// batch that fits in that. Says how much wgpu allocated where the backend tells.
    pub fn allocated<T>(&self, built: Result<T>, run: RunSize, needed: Memory) -> Result<T> {
        match self.gpu.check_alive() {
            Ok(()) => {
                if let Some(bytes) =
                    self.gpu.device.generate_allocator_report().map(|r| r.total_allocated_bytes)
                {
                    eprintln!("wgpu allocated {:.0} MB on the device.", bytes as f64 / 1e6);
                }
                built
            }
            Err(lost) if lost.is_out_of_memory() => {
                let on_gpu = self.gpu.info.device_type != wgpu::DeviceType::Cpu;
                let advice = match self.gpu.allocated_at_out_of_memory() {
                    Some(bytes) => match Memory::largest_batch_within(self.config, run, on_gpu, bytes) {
                        0 => format!(
                            "{:.0} MB had been allocated when it failed, not enough for one image: use a \
                             smaller --width",
                            bytes as f64 / 1e6
                        ),
                        largest => format!(
                            "{:.0} MB had been allocated when it failed: use --batch-size {largest} or less",
                            bytes as f64 / 1e6
                        ),
                    },
                    None => format!("try --batch-size {}", (run.batch / 2).max(1)),
                };
                bail!(
                    "{} ran out of memory allocating this run, which needs about {needed}. {advice}. \
                     Other programs using the GPU (a browser, a game) take from the same memory.",
                    self.gpu.describe()
                )
            }
            Err(lost) => Err(lost.into()),
        }
    }

    /// Graphs for `mode` over `images` images in batches of `batch`.
    pub fn graphs(&self, mode: Mode, batch: usize, images: usize) -> Result<Graphs> {
        let chooser = std::cell::RefCell::new(self.chooser());
        let settings = GraphSettings {
            gpu: &self.gpu,
            config: self.config,
            params: &self.params,
            norm: self.norm,
            sgd: self.sgd,
            augment: self.augment,
            bn_group: self.bn_group,
            device_share: self.device_share.as_ref().map(|(shares, device)| (shares, *device)),
            precision: self.precision,
            chooser: &chooser,
        };
        Graphs::new(&settings, mode, batch, images)
    }

    /// Logits of every image of `data` (in order), through `graphs` (evaluation mode). Every
    /// batch must have run to its end (the step counter): a skipped one would leave the
    /// previous batch's logits in its place.
    pub fn logits(&self, graphs: &Graphs, data: &Dataset) -> Result<Vec<f32>, DeviceLost> {
        let batch = graphs.full.batch;
        let mut logits = Vec::with_capacity(data.len() * 10);
        self.params.set_metrics(&self.gpu, &[0.0; METRICS_LEN], 0);
        for start in (0..data.len()).step_by(batch) {
            let n = batch.min(data.len() - start);
            let g = graphs.for_batch(n);
            let pixels = &data.pixels[start * IMAGE_BYTES..(start + n) * IMAGE_BYTES];
            g.submit(&self.gpu, &self.params, pixels, &vec![0; n], StepUniform::default());
            logits.extend(g.read_logits(&self.gpu)?);
        }
        counted(
            &self.gpu.try_read::<f32>(&self.params.metrics)?,
            data.len().div_ceil(batch),
            "evaluation batches",
        )?;
        Ok(logits)
    }

    pub fn evaluate(&self, graphs: &Graphs, data: &Dataset) -> Result<Evaluation, DeviceLost> {
        let logits = self.logits(graphs, data)?;
        Ok(score(&logits, &data.labels))
    }
}

/// `metrics` (read after the GPU finished), unless its count of the steps that ran to their
/// end is not `submitted` (`what` they were): then the GPU skipped work it reported done, and
/// the run ends as for a lost device, its last checkpoint intact.
pub fn counted<'a>(metrics: &'a [f32], submitted: usize, what: &str) -> Result<&'a [f32], DeviceLost> {
    let ran = metrics[STEP_COUNTER] as usize;
    if ran == submitted {
        return Ok(metrics);
    }
    Err(DeviceLost(format!(
        "it ran {ran} of the {submitted} {what} submitted, though it reported them all done: its driver may \
         have stopped a long command buffer (a smaller --batch-size makes each shorter)"
    )))
}

/// Accuracy, per-class accuracy and mean cross-entropy of logits against labels.
pub fn score(logits: &[f32], labels: &[u8]) -> Evaluation {
    let classes = 10;
    let mut right = vec![0usize; classes];
    let mut seen = vec![0usize; classes];
    let mut loss = 0.0;
    for (row, &label) in logits.chunks(classes).zip(labels) {
        let row: Vec<f64> = row.iter().map(|v| *v as f64).collect();
        let (l, correct) = crate::cpu::cross_entropy::forward(&row, &[label as u32], classes);
        loss += l;
        seen[label as usize] += 1;
        right[label as usize] += correct;
    }
    let images = labels.len();
    Evaluation {
        accuracy: right.iter().sum::<usize>() as f64 / images.max(1) as f64,
        per_class: right.iter().zip(&seen).map(|(r, s)| *r as f64 / (*s).max(1) as f64).collect(),
        loss: loss / images.max(1) as f64,
        images,
    }
}

/// An error, naming the limit and what to change, if a step of `mode` over a batch of
/// `batch` images of this network, activations in `precision`, needs more than the device
/// offers. Nothing is allocated.
pub fn check_fits(
    gpu: &Gpu,
    config: ModelConfig,
    batch: usize,
    mode: Mode,
    precision: Precision,
) -> Result<()> {
    let graph = Graph::build(config, batch, mode).in_precision(precision);
    let short = Requirements::of(&graph, &gpu.limits).shortfalls(&gpu.limits);
    let Some(first) = short.first() else {
        return Ok(());
    };
    let what = format!("Shake-Shake {} at batch {batch}", config.paper_name());
    let fix = if short.iter().all(|s| s.grows_with_batch) {
        match max_batch(&gpu.limits, config, mode, precision) {
            0 => "use a smaller --width (not even one image fits)".to_string(),
            largest => format!("use --batch-size {largest} or less"),
        }
    } else {
        "this device cannot run shakeshake's kernels; choose another with --adapter (see `shakeshake adapters`)"
            .to_string()
    };
    bail!("{what} does not fit {}: its {first}; {fix}", gpu.describe())
}

/// The largest batch whose step of `mode`, activations in `precision`, fits `limits` (0 if
/// none does).
pub fn max_batch(limits: &wgpu::Limits, config: ModelConfig, mode: Mode, precision: Precision) -> usize {
    let fits = |batch| {
        let graph = Graph::build(config, batch, mode).in_precision(precision);
        Requirements::of(&graph, limits).shortfalls(limits).is_empty()
    };
    // Binary search over [0, 2^16]: needs only grow with the batch.
    let (mut good, mut bad) = (0, 1 << 16);
    while bad - good > 1 {
        let mid = (good + bad) / 2;
        if fits(mid) { good = mid } else { bad = mid }
    }
    good
}
