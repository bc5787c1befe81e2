//! The training loop: epochs of shuffled batches, the cosine schedule, progress with ETA, a
//! summary line, a CSV row, a plot and a checkpoint at the end of every epoch.

use super::checkpoint::{self, Checkpoint, Position};
use super::data::{self, Dataset, IMAGE_BYTES};
use super::options::TrainOptions;
use super::plot;
use super::session::{Session, max_batch};
use crate::cpu::sgd::SgdSettings;
use crate::gpu::Gpu;
use crate::model::{Graph, Mode, ParamStore};
use crate::ops::StepUniform;
use crate::ops::cross_entropy::METRICS_LEN;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub const OPTIONS_FILE: &str = "options.json";
pub const METRICS_FILE: &str = "metrics.csv";
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
pub const MODEL_FILE: &str = "model.safetensors";
pub const PLOT_FILE: &str = "curves.png";
const CSV_HEADER: &str =
    "epoch,train_loss,train_accuracy,test_loss,test_accuracy,lr,seconds,images_per_second";

/// One epoch's results: a row of metrics.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub lr: f64,
    pub seconds: f64,
    pub images_per_second: f64,
}

impl EpochRow {
    fn csv(&self) -> String {
        format!(
            // Losses and accuracies in full: resumed runs are compared bit for bit.
            "{},{},{},{},{},{:.6e},{:.2},{:.1}",
            self.epoch,
            self.train_loss,
            self.train_accuracy,
            self.test_loss,
            self.test_accuracy,
            self.lr,
            self.seconds,
            self.images_per_second
        )
    }

    fn parse(line: &str) -> Option<EpochRow> {
        let f: Vec<f64> = line.split(',').map(|v| v.parse().ok()).collect::<Option<_>>()?;
        let [epoch, train_loss, train_accuracy, test_loss, test_accuracy, lr, seconds, images_per_second] =
            f[..]
        else {
            return None;
        };
        Some(EpochRow {
            epoch: epoch as usize,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            lr,
            seconds,
            images_per_second,
        })
    }
}

/// Reads the rows of a run's metrics.csv.
pub fn read_metrics(run_dir: &Path) -> Result<Vec<EpochRow>> {
    let path = run_dir.join(METRICS_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().skip(1).filter_map(EpochRow::parse).collect())
}

/// The 32-bit seed the shaders draw from: every bit of the 64-bit seed counts.
pub fn shader_seed(seed: u64) -> u32 {
    (seed ^ (seed >> 32)) as u32
}

/// Cosine annealing per iteration from `base` to 0 over `total` steps.
pub fn learning_rate(base: f64, step: u64, total: u64) -> f64 {
    base * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total.max(1) as f64).cos())
}

/// The order of the training images in `epoch`: a fresh permutation, the same every run.
pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch as u64);
    order.shuffle(&mut rng);
    order
}

/// Reads the metrics accumulators without waiting: a step's submission also copies them to
/// a staging buffer, which is mapped in the background and picked up by a later `poll`.
struct MetricsProbe {
    staging: wgpu::Buffer,
    ready: Arc<AtomicBool>,
    /// A copy was recorded and not yet mapped.
    copied: bool,
    /// A mapping is in flight.
    pending: bool,
    last: [f32; METRICS_LEN],
}

impl MetricsProbe {
    fn new(gpu: &Gpu) -> Self {
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("metrics probe"),
            size: (METRICS_LEN * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        MetricsProbe {
            staging,
            ready: Arc::new(AtomicBool::new(false)),
            copied: false,
            pending: false,
            last: [0.0; METRICS_LEN],
        }
    }

    /// Record a copy of the metrics into `encoder` if no read is in flight; `after_submit`
    /// then starts the read. So the step that carries the copy is the only submission.
    fn record_copy(&mut self, encoder: &mut wgpu::CommandEncoder, metrics: &wgpu::Buffer) {
        if !self.pending {
            encoder.copy_buffer_to_buffer(metrics, 0, &self.staging, 0, (METRICS_LEN * 4) as u64);
            self.copied = true;
        }
    }

    fn after_submit(&mut self) {
        if !self.copied {
            return;
        }
        let ready = self.ready.clone();
        self.staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            r.expect("mapping the metrics failed");
            ready.store(true, Ordering::Release);
        });
        self.copied = false;
        self.pending = true;
    }

    /// The latest metrics that have arrived.
    fn poll(&mut self, gpu: &Gpu) -> [f32; METRICS_LEN] {
        let _ = gpu.device.poll(wgpu::PollType::Poll);
        if self.pending && self.ready.swap(false, Ordering::Acquire) {
            let data = self.staging.slice(..).get_mapped_range().expect("mapped metrics");
            self.last.copy_from_slice(bytemuck::cast_slice(&data));
            drop(data);
            self.staging.unmap();
            self.pending = false;
        }
        self.last
    }

    /// Wait for everything and return the final metrics.
    fn finish(&mut self, gpu: &Gpu, metrics: &wgpu::Buffer) -> [f32; METRICS_LEN] {
        gpu.wait();
        self.poll(gpu);
        let v: Vec<f32> = gpu.read(metrics);
        self.last.copy_from_slice(&v);
        self.last
    }
}

/// A new run, or `--resume` of one, in `run_dir`; with `stop_after`, at most that many
/// epochs in this call (continue later with `resume`).
pub fn train(
    gpu: Gpu,
    opts: &TrainOptions,
    run_dir: &Path,
    resume: bool,
    stop_after: Option<usize>,
) -> Result<Vec<EpochRow>> {
    let config = opts.model()?;
    let (mut train_set, mut test_set) = data::load(&opts.data, Some(opts.records_per_file))?;
    if let Some(n) = opts.train_subset {
        train_set.truncate(n);
    }
    if let Some(n) = opts.test_subset {
        test_set.truncate(n);
    }
    if train_set.is_empty() {
        bail!("--train-subset 0 leaves nothing to train on");
    }
    let largest = max_batch(&gpu, config);
    if opts.batch_size == 0 || opts.batch_size > largest {
        bail!(
            "--batch-size {} does not fit {}: its storage bindings hold at most {largest} images of Shake-Shake {}; use a smaller --batch-size",
            opts.batch_size,
            gpu.describe(),
            config.paper_name()
        );
    }

    std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let (store, momentum, start, mut rows) = if resume {
        let ckpt = checkpoint::load(&run_dir.join(CHECKPOINT_FILE), Some(&config))?;
        let mut rows = read_metrics(run_dir)?;
        rows.truncate(ckpt.position.epoch);
        if rows.len() != ckpt.position.epoch || rows.iter().enumerate().any(|(i, r)| r.epoch != i + 1) {
            bail!(
                "{} does not hold a row for each of the checkpoint's {} epochs; the run directory is damaged",
                run_dir.join(METRICS_FILE).display(),
                ckpt.position.epoch
            );
        }
        eprintln!(
            "Resuming {} after epoch {} (step {}).",
            run_dir.display(),
            ckpt.position.epoch,
            ckpt.position.step
        );
        (ckpt.params, Some(ckpt.momentum), ckpt.position, rows)
    } else {
        let specs = Graph::build(config, 1, Mode::Eval).params;
        let store = ParamStore::init(&specs, opts.seed);
        crate::files::write_atomically(
            &run_dir.join(OPTIONS_FILE),
            serde_json::to_string_pretty(opts)?.as_bytes(),
        )?;
        (store, None, Position { epoch: 0, step: 0, seed: opts.seed }, vec![])
    };
    write_metrics(run_dir, &rows)?;

    eprintln!(
        "Shake-Shake {} ({}), {} parameters; {} training images, {} test images; batch {}, {} epochs, lr {} cosine.",
        config.paper_name(),
        config.variant_name(),
        store.trainable_count(),
        train_set.len(),
        test_set.len(),
        opts.batch_size,
        opts.epochs,
        opts.lr
    );
    let mut session = Session::new(gpu, config, &store, momentum.as_deref())?;
    session.augment = !opts.no_augment;
    session.run_dir = Some(run_dir.to_path_buf());
    let sgd = SgdSettings { momentum: opts.momentum, weight_decay: opts.weight_decay, nesterov: true };
    eprintln!("Preparing kernels (the first run on a new adapter times each kernel variant once)...");
    let train_graphs = session.graphs(Mode::Train, opts.batch_size, train_set.len(), sgd);
    let eval_graphs = session.graphs(Mode::Eval, opts.batch_size, test_set.len().max(1), sgd);

    let steps_per_epoch = train_set.len().div_ceil(opts.batch_size) as u64;
    let total_steps = steps_per_epoch * opts.epochs as u64;
    let mut step = start.step;
    let mut probe = MetricsProbe::new(&session.gpu);
    let (mut pixels, mut labels) = (vec![0u8; opts.batch_size * IMAGE_BYTES], vec![0u32; opts.batch_size]);
    let last_epoch = stop_after.map_or(opts.epochs, |n| opts.epochs.min(start.epoch + n));
    for epoch in start.epoch..last_epoch {
        let started = Instant::now();
        let bar = progress_bar(epoch, opts.epochs, train_set.len());
        session.params.reset_metrics(&session.gpu);
        let order = epoch_order(opts.seed, epoch, train_set.len());
        let mut in_flight: VecDeque<wgpu::SubmissionIndex> = VecDeque::new();
        let mut lr = opts.lr;
        for chunk in order.chunks(opts.batch_size) {
            let n = chunk.len();
            gather(&train_set, chunk, &mut pixels, &mut labels);
            lr = learning_rate(opts.lr, step, total_steps);
            let uniform =
                StepUniform { step: step as u32, seed: shader_seed(opts.seed), lr: lr as f32, _pad: 0 };
            let graph = train_graphs.for_batch(n);
            let metrics = &session.params.metrics;
            in_flight.push_back(graph.submit_then(
                &session.gpu,
                &session.params,
                &pixels[..n * IMAGE_BYTES],
                &labels[..n],
                uniform,
                |encoder| probe.record_copy(encoder, metrics),
            ));
            probe.after_submit();
            step += 1;
            // Two steps in flight: the CPU prepares the next batch while the GPU works.
            if in_flight.len() > 2 {
                let oldest = in_flight.pop_front().expect("in flight");
                let _ = session
                    .gpu
                    .device
                    .poll(wgpu::PollType::Wait { submission_index: Some(oldest), timeout: None });
            }
            let m = probe.poll(&session.gpu);
            bar.inc(n as u64);
            bar.set_message(running_message(&m, bar.position(), started));
        }
        let m = probe.finish(&session.gpu, &session.params.metrics);
        let train_seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let test = if test_set.is_empty() { None } else { Some(session.evaluate(&eval_graphs, &test_set)) };
        let row = EpochRow {
            epoch: epoch + 1,
            train_loss: (m[0] / m[2].max(1.0)) as f64,
            train_accuracy: (m[1] / m[2].max(1.0)) as f64,
            test_loss: test.as_ref().map_or(f64::NAN, |t| t.loss),
            test_accuracy: test.as_ref().map_or(f64::NAN, |t| t.accuracy),
            lr,
            seconds: started.elapsed().as_secs_f64(),
            images_per_second: train_set.len() as f64 / train_seconds,
        };
        eprintln!(
            "epoch {:>4}/{}  train loss {:.4}  train acc {:6.2}%  test acc {:6.2}%  lr {:.4}  {:.1}s ({:.0} img/s)  run ETA {}",
            row.epoch,
            opts.epochs,
            row.train_loss,
            100.0 * row.train_accuracy,
            100.0 * row.test_accuracy,
            row.lr,
            row.seconds,
            row.images_per_second,
            duration(row.seconds * (opts.epochs - row.epoch) as f64)
        );
        rows.push(row);
        write_metrics(run_dir, &rows)?;
        plot::write_curves(&run_dir.join(PLOT_FILE), &rows)?;
        let ckpt = Checkpoint {
            config,
            params: session.params.download(&session.gpu),
            momentum: session.params.download_velocity(&session.gpu),
            position: Position { epoch: epoch + 1, step, seed: opts.seed },
        };
        checkpoint::save(&run_dir.join(CHECKPOINT_FILE), &ckpt)?;
        if epoch + 1 == opts.epochs {
            checkpoint::save(&run_dir.join(MODEL_FILE), &ckpt)?;
        }
    }
    if let Some(last) = rows.last().filter(|r| r.epoch == opts.epochs) {
        eprintln!(
            "Done: test error {:.2}% after {} epochs (the paper reports the last epoch's error). Run directory: {}",
            100.0 * (1.0 - last.test_accuracy),
            last.epoch,
            run_dir.display()
        );
    }
    Ok(rows)
}

/// "3d 4h", "2h 05m", "4m 10s".
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60) {
        (d, h, _, _) if d > 0 => format!("{d}d {h}h"),
        (_, h, m, _) if h > 0 => format!("{h}h {m:02}m"),
        (_, _, m, s) => format!("{m}m {s:02}s"),
    }
}

fn gather(set: &Dataset, indices: &[usize], pixels: &mut [u8], labels: &mut [u32]) {
    for (k, &i) in indices.iter().enumerate() {
        pixels[k * IMAGE_BYTES..(k + 1) * IMAGE_BYTES].copy_from_slice(set.image(i));
        labels[k] = set.labels[i] as u32;
    }
}

fn write_metrics(run_dir: &Path, rows: &[EpochRow]) -> Result<()> {
    let text: String = std::iter::once(CSV_HEADER.to_string())
        .chain(rows.iter().map(EpochRow::csv))
        .collect::<Vec<_>>()
        .join("\n");
    crate::files::write_atomically(&run_dir.join(METRICS_FILE), (text + "\n").as_bytes())
}

fn progress_bar(epoch: usize, epochs: usize, images: usize) -> ProgressBar {
    let bar = ProgressBar::new(images as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} images  {msg}  ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
    bar
}

fn running_message(m: &[f32; METRICS_LEN], done: u64, started: Instant) -> String {
    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
    if m[2] > 0.0 {
        format!("{rate:.0} img/s  loss {:.4}  acc {:.1}%", m[0] / m[2], 100.0 * m[1] / m[2])
    } else {
        format!("{rate:.0} img/s")
    }
}

/// The run directory: `--run-dir`, else runs/<depth>-2x<width>d-seed<seed>.
pub fn default_run_dir(opts: &TrainOptions) -> PathBuf {
    PathBuf::from("runs").join(format!("{}-2x{}d-seed{}", opts.depth, opts.width, opts.seed))
}
