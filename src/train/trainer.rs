//! The training loop: epochs of shuffled batches, the cosine schedule, progress with ETA, a
//! summary line, a CSV row, a plot and a checkpoint at the end of every epoch.

use super::checkpoint::{self, Checkpoint, Position};
use super::data::Dataset;
use super::plot;
use super::precision;
use super::ranks::Ranks;
use super::replicas::{Replica, Replicas};
use super::run_dir::{
    CHECKPOINT_FILE, EpochRow, MODEL_FILE, PLOT_FILE, Run, Start, variants_file, write_metrics,
};
use super::session::{Graphs, Session, check_fits, counted};
use super::shares::Shares;
use super::stop;
use super::watchdog::Watchdog;
use crate::gpu::Gpu;
use crate::gpu::probe::ReadbackProbe;
use crate::model::memory::RunSize;
use crate::model::{Graph, Mode, ModelConfig, ParamStore};
use crate::ops::StepUniform;
use crate::ops::cross_entropy::{METRICS_FLOATS, METRICS_LEN};
use crate::shapes::{IMAGE_BYTES, Precision, SgdSettings};
use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

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

/// When this invocation stops, and how often it checkpoints inside an epoch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Schedule {
    /// At most this many epochs in this invocation (continue later with `Run::resume`).
    pub stop_after: Option<usize>,
    /// A checkpoint inside an epoch once this long has passed since the last one, bounding
    /// what a power cut or a lost GPU can take.
    pub checkpoint_every: Option<Duration>,
}

/// Steps timed before a CPU adapter's throughput is reported.
const CPU_WARNING_AFTER_STEPS: u64 = 5;

/// Images the suggested quick look trains on (10 epochs of 10,000).
const QUICK_LOOK_IMAGES: f64 = 100_000.0;

/// Test hook: `SHAKESHAKE_STOP_AFTER_STEPS=N` stops this invocation after N steps, as a
/// Ctrl-C there would.
fn stop_after_steps() -> Option<u64> {
    std::env::var("SHAKESHAKE_STOP_AFTER_STEPS").ok()?.parse().ok()
}

/// Test hook: `SHAKESHAKE_LOSE_DEVICE_AFTER_STEPS=N` destroys the device after N steps of
/// this invocation, as a driver reset would lose it.
fn lose_device_after_steps() -> Option<u64> {
    std::env::var("SHAKESHAKE_LOSE_DEVICE_AFTER_STEPS").ok()?.parse().ok()
}

/// A run stopped on request, with a checkpoint to resume from.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Train `run` on the given data sets (subsets as its options say), as `schedule` says, on
/// `gpus` (several: each takes its share of every batch, see `replicas`), and with `ranks`,
/// the other processes of an MPI run (this process then has one device).
pub fn train(
    gpus: Vec<Gpu>,
    ranks: Option<std::rc::Rc<dyn Ranks>>,
    run: &Run,
    mut train_set: Dataset,
    mut test_set: Dataset,
    schedule: Schedule,
) -> Result<Vec<EpochRow>> {
    let opts = &run.options;
    let config = opts.model()?;
    if let Some(n) = opts.train_subset {
        train_set.truncate(n);
    }
    if let Some(n) = opts.test_subset {
        test_set.truncate(n);
    }
    // Under MPI each rank has one device, its place among the run's devices its rank.
    let (first, devices) = match &ranks {
        Some(r) if gpus.len() > 1 => bail!(
            "under mpirun each process trains on one adapter, but --adapter lists {}: start a process an \
             adapter instead",
            gpus.len()
        ),
        Some(r) => (r.rank(), r.size()),
        None => (0, gpus.len()),
    };
    let shares = opts.device_shares(devices);
    let rest =
        Some(train_set.len() % opts.batch_size).filter(|r| *r > 0 && train_set.len() > opts.batch_size);
    shares.check(opts.batch_size.min(train_set.len()), rest)?;
    let device_batches: Vec<usize> = shares.split(opts.batch_size).iter().map(|s| s.len()).collect();
    let (precision, why) = precision::of_run(&gpus, ranks.as_deref(), opts.precision)?;
    for (gpu, batch) in gpus.iter().zip(&device_batches[first..]) {
        check_fits(gpu, config, *batch, Mode::Train, precision)?;
    }

    let leads = ranks.as_ref().is_none_or(|r| r.rank() == 0);
    // Rank 0 alone writes the run's files (the others only their kernel choices).
    let _lock = if leads { Some(run.begin()?) } else { None };
    let mut checkpoints = Checkpoints::new(run, schedule.checkpoint_every);
    let (store, momentum, start, mut rows) = starting_point(run, config);
    let loss_scale = precision::starting_loss_scale(precision, &run.start)?;
    let ghosts = match (opts.bn_group, devices) {
        (Some(n), _) => format!(" (batch norm over groups of {n})"),
        (None, 1) => String::new(),
        (None, devices) => format!(
            " split {} over {devices} devices (batch norm over each device's share)",
            device_batches.iter().map(usize::to_string).collect::<Vec<_>>().join(" + ")
        ),
    };
    let scaling = match precision {
        Precision::F32 => String::new(),
        Precision::F16 => format!(", loss scale {}", loss_scale.scale as f64),
    };
    eprintln!("Activations and their gradients in {} ({why}){scaling}.", precision.name());
    eprintln!(
        "Shake-Shake {} ({}), {} parameters; {} training images, {} test images; batch {}{ghosts}, {} epochs, lr {} \
         cosine.",
        config.paper_name(),
        config.variant_name(),
        store.trainable_count(),
        train_set.len(),
        test_set.len(),
        opts.batch_size,
        opts.epochs,
        opts.lr
    );
    let size = RunSize {
        batch: opts.batch_size,
        train_images: train_set.len(),
        test_images: test_set.len(),
        bn_group: opts.bn_group,
        precision,
    };
    let (devices, eval_graphs) = open_devices(gpus, &shares, first, run, &store, momentum, size)?;
    for device in &devices {
        device.session.params.set_loss_scale(&device.session.gpu, loss_scale);
    }
    let replicas = Replicas { devices, shares, first_device: first, ranks };
    let session = replicas.first();

    let steps_per_epoch = train_set.len().div_ceil(opts.batch_size) as u64;
    let total_steps = steps_per_epoch * opts.epochs as u64;
    let mut step = start.step;
    let mut probe = ReadbackProbe::new(&session.gpu, METRICS_FLOATS);
    let (mut pixels, mut labels) = (vec![0u8; opts.batch_size * IMAGE_BYTES], vec![0u32; opts.batch_size]);
    let last_epoch = schedule.stop_after.map_or(opts.epochs, |n| opts.epochs.min(start.epoch + n));
    let stop_at_step = stop_after_steps().map(|n| start.step + n);
    let lose_at_step = lose_device_after_steps().map(|n| start.step + n);
    let on_cpu = session.gpu.info.device_type == wgpu::DeviceType::Cpu;
    let invocation_started = Instant::now();
    let mut watchdog = Watchdog::start(&session.gpu);
    for epoch in start.epoch..last_epoch {
        let started = Instant::now();
        let bar = progress_bar(epoch, opts.epochs, train_set.len());
        // An epoch resumed in its middle sums on from where it stopped.
        let skip = if epoch == start.epoch { start.batches } else { 0 };
        let metrics = if skip > 0 { start.metrics } else { [0.0; METRICS_LEN] };
        replicas.set_metrics(&metrics, skip);
        bar.inc((skip * opts.batch_size).min(train_set.len()) as u64);
        let order = epoch_order(opts.seed, epoch, train_set.len());
        let mut in_flight: VecDeque<wgpu::SubmissionIndex> = VecDeque::new();
        for (batch, chunk) in order.chunks(opts.batch_size).enumerate().skip(skip) {
            let n = chunk.len();
            gather(&train_set, chunk, &mut pixels, &mut labels);
            let lr = learning_rate(opts.lr, step, total_steps);
            let uniform =
                StepUniform { step: step as u32, seed: shader_seed(opts.seed), lr: lr as f32, _pad: 0 };
            let metrics = &session.params.metrics;
            let submitted = replicas
                .submit(&pixels[..n * IMAGE_BYTES], &labels[..n], uniform, |encoder| {
                    probe.record_copy(encoder, metrics)
                })
                .map_err(checkpoints.lost(epoch, step))?;
            in_flight.push_back(submitted);
            probe.after_submit();
            step += 1;
            if lose_at_step == Some(step) {
                session.gpu.device.destroy();
            }
            // Two steps in flight: the CPU prepares the next batch while the GPU works.
            if in_flight.len() > 2 {
                let oldest = in_flight.pop_front().expect("in flight");
                session.gpu.try_wait_for(Some(oldest)).map_err(checkpoints.lost(epoch, step))?;
            }
            watchdog.step_done(&session.gpu);
            bar.inc(n as u64);
            let m = probe.poll(&session.gpu);
            session.gpu.check_alive().map_err(checkpoints.lost(epoch, step))?;
            // The probe trails the GPU by a step or two; a non-finite sum stays non-finite.
            check_finite(m, epoch, step)?;
            bar.set_message(running_message(m, bar.position(), started));
            if on_cpu && step == start.step + CPU_WARNING_AFTER_STEPS {
                let rate = (CPU_WARNING_AFTER_STEPS as usize * opts.batch_size) as f64
                    / invocation_started.elapsed().as_secs_f64();
                let images_left = (total_steps - step) as f64 * opts.batch_size as f64;
                let larger = (opts.epochs * train_set.len()) as f64 > QUICK_LOOK_IMAGES;
                let note = cpu_adapter_note(&session.gpu.info.name, rate, images_left, larger);
                bar.suspend(|| eprintln!("{note}"));
            }

            // Every process stops and checkpoints at the same step, whichever was asked.
            let (stop, due) =
                replicas.agree(stop::requested() || stop_at_step == Some(step), checkpoints.due());
            if stop || due {
                let m = replicas.metrics(&mut probe).map_err(checkpoints.lost(epoch, step))?;
                let m = counted(&m, batch + 1, "steps").map_err(checkpoints.lost(epoch, step))?;
                check_finite(m, epoch, step)?;
                let metrics = m[..METRICS_LEN].try_into().expect("the probe reads the metrics buffer");
                let position = Position { epoch, step, seed: opts.seed, batches: batch + 1, metrics };
                checkpoints.save(&replicas, epoch, position)?;
                if stop {
                    bar.abandon();
                    if !replicas.leads() {
                        return Err(Interrupted(String::new()).into());
                    }
                    return Err(Interrupted(format!(
                        "Stopped after step {step} ({} of {} batches of epoch {}), with a checkpoint. Continue \
                         with: shakeshake train --resume {}",
                        batch + 1,
                        steps_per_epoch,
                        epoch + 1,
                        run.dir.display()
                    ))
                    .into());
                }
            }
        }
        let m = replicas.metrics(&mut probe).map_err(checkpoints.lost(epoch, step))?;
        let m = counted(&m, steps_per_epoch as usize, "steps").map_err(checkpoints.lost(epoch, step))?;
        check_finite(m, epoch, step)?;
        let train_seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        // The run's device 0 evaluates and writes the run's files; the other processes go on.
        if let Some(eval_graphs) = &eval_graphs {
            let scaled =
                session.params.read_loss_scale(&session.gpu).map_err(checkpoints.lost(epoch, step))?;
            let test = session.evaluate(eval_graphs, &test_set).map_err(checkpoints.lost(epoch, step))?;
            let row = EpochRow {
                epoch: epoch + 1,
                train_loss: (m[0] / m[2].max(1.0)) as f64,
                train_accuracy: (m[1] / m[2].max(1.0)) as f64,
                test_loss: test.loss,
                test_accuracy: test.accuracy,
                // The last step's rate, which the epoch ended at.
                lr: learning_rate(opts.lr, step - 1, total_steps),
                seconds: started.elapsed().as_secs_f64(),
                images_per_second: train_set.len() as f64 / train_seconds,
                loss_scale: scaled.scale as f64,
                skipped_steps: scaled.skipped as u64,
            };
            eprintln!("{}", epoch_line(&row, opts.epochs));
            rows.push(row);
            write_metrics(&run.dir, &rows)?;
            plot::write_curves(&run.file(PLOT_FILE), &config, &rows)?;
        }
        checkpoints.save(&replicas, epoch, Position::epoch_end(epoch + 1, step, opts.seed))?;
    }
    if let Some(last) = rows.last().filter(|r| r.epoch >= opts.epochs && replicas.leads()) {
        write_model(run, last)?;
    }
    Ok(rows)
}

/// Where the run starts: the checkpoint's parameters, momentum, position and epoch rows when
/// resuming (saying so), else new parameters from the seed.
fn starting_point(
    run: &Run,
    config: ModelConfig,
) -> (ParamStore, Option<&[Vec<f32>]>, Position, Vec<EpochRow>) {
    match &run.start {
        Start::Resume { checkpoint, rows } => {
            let p = checkpoint.position;
            let inside = if p.batches > 0 {
                format!(", {} batches into epoch {}", p.batches, p.epoch + 1)
            } else {
                String::new()
            };
            eprintln!("Resuming {} after epoch {} (step {}{inside}).", run.dir.display(), p.epoch, p.step);
            (checkpoint.params.clone(), Some(&checkpoint.momentum[..]), p, rows.clone())
        }
        Start::New => {
            let seed = run.options.seed;
            let specs = Graph::build(config, 1, Mode::Eval).params;
            (ParamStore::init(&specs, seed), None, Position::epoch_end(0, 0, seed), vec![])
        }
    }
}

/// This process's devices (the run's from `first` on), each with its kernels chosen, its
/// memory checked and printed, and its training graphs allocated; and the evaluation graphs,
/// on the run's device 0 (none in another process).
fn open_devices(
    gpus: Vec<Gpu>,
    shares: &Shares,
    first: usize,
    run: &Run,
    store: &ParamStore,
    momentum: Option<&[Vec<f32>]>,
    size: RunSize,
) -> Result<(Vec<Replica>, Option<Graphs>)> {
    let several = shares.devices() > 1;
    let mut devices = vec![];
    let mut eval_graphs = None;
    for (d, gpu) in (first..).zip(gpus) {
        // Each device's memory and kernels are those of its share of a batch.
        let device_size = RunSize { batch: shares.split(size.batch)[d].len(), ..size };
        let device = several.then(|| (shares.clone(), d));
        let (session, train, eval) =
            open_session(gpu, run, store, momentum, device_size, size.batch, device)?;
        devices.push(Replica::new(session, train));
        eval_graphs = eval_graphs.or(eval);
    }
    Ok((devices, eval_graphs))
}

/// One device's session with its kernels chosen (a progress bar while they are), its memory
/// checked and printed, and its training graphs allocated for batches of `whole_batch`
/// (its share of each, for `device` of several); and its evaluation graphs if it is the
/// first. `size`: the device's, its batch the images it runs at once.
fn open_session(
    gpu: Gpu,
    run: &Run,
    store: &ParamStore,
    momentum: Option<&[Vec<f32>]>,
    size: RunSize,
    whole_batch: usize,
    device: Option<(Shares, usize)>,
) -> Result<(Session, Graphs, Option<Graphs>)> {
    let opts = &run.options;
    let on_cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
    let evaluates = device.as_ref().is_none_or(|(_, d)| *d == 0);
    let name = device.as_ref().map_or("Device".to_string(), |(_, d)| format!("Device {d}"));
    let mut session = Session::new(gpu, opts.model()?, store, momentum)?;
    session.precision = size.precision;
    session.augment = !opts.no_augment;
    session.bn_group = opts.bn_group;
    session.variants_file = Some(run.file(&variants_file(device.as_ref().map_or(0, |(_, d)| *d))));
    session.device_share = device;
    session.sgd = SgdSettings { momentum: opts.momentum, weight_decay: opts.weight_decay, nesterov: true };
    eprintln!(
        "Preparing kernels (the first run on a new adapter checks and times each kernel variant once)..."
    );
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("kernels [{bar:30}] {pos}/{len} {msg}  {elapsed}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let compiled = |done: usize, total: usize| {
        bar.set_message(if on_cpu { "convolution passes compiled ahead" } else { "kernels compiled" });
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let memory = session.prepare(size, &compiled, |done, shapes| {
        bar.set_message("convolution shapes chosen");
        bar.set_length(shapes as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let memory = memory?;
    eprintln!("{name} memory: {memory}.");
    let graphs = session.graphs(Mode::Train, whole_batch, size.train_images).and_then(|train| {
        let eval = evaluates.then(|| session.graphs(Mode::Eval, size.batch, size.test_images)).transpose()?;
        Ok((train, eval))
    });
    let (train_graphs, eval_graphs) = session.allocated(graphs, size, memory)?;
    if let (Some(budget), Some(longest)) =
        (session.gpu.dispatch_budget_ms, train_graphs.full.longest_expected())
    {
        let ms = longest.estimated_ms;
        let verdict = if ms <= budget {
            format!(
                "under the {budget:.0} ms a dispatch is kept to (passes are cut by images), far below the OS's GPU watchdog"
            )
        } else {
            format!("over the {budget:.0} ms a dispatch is kept to: its pass cannot be cut by images")
        };
        eprintln!(
            "A training step runs in {} command buffers; its longest convolution pass, or piece of one \
             (starting with {}), is expected to take {ms:.0} ms, {verdict}.",
            train_graphs.full.command_buffer_count(),
            longest.label.split('[').next().unwrap_or_default(),
        );
    }
    Ok((session, train_graphs, eval_graphs))
}

/// What a run on a CPU adapter is told once it knows its speed.
/// `larger_than_a_quick_look`: the run trains on more images than the quick look suggested
/// here (which is then not suggested to itself).
fn cpu_adapter_note(
    adapter: &str,
    images_per_second: f64,
    images_left: f64,
    larger_than_a_quick_look: bool,
) -> String {
    let quick = if larger_than_a_quick_look {
        " For a quick look: --depth 8 --width 16 --epochs 10 --train-subset 10000."
    } else {
        ""
    };
    format!(
        "Note: {adapter} is a CPU adapter (a software renderer), not a GPU. At {images_per_second:.0} images/s \
         this run needs about {} more.{quick} For the paper's results, use a GPU.",
        duration(images_left / images_per_second)
    )
}

/// An epoch's summary line.
fn epoch_line(row: &EpochRow, epochs: usize) -> String {
    // f16 runs: where loss scaling stands (f32 runs keep 1 and skip nothing).
    let scaling = match (row.loss_scale, row.skipped_steps) {
        (1.0, 0) => String::new(),
        (scale, skipped) => format!("  loss scale {scale} ({skipped} steps skipped)"),
    };
    format!(
        "epoch {:>4}/{}  train loss {:.4}  train acc {:6.2}%  test acc {:6.2}%  lr {:.4}{scaling}  {:.1}s ({:.0} img/s)  run ETA {}",
        row.epoch,
        epochs,
        row.train_loss,
        100.0 * row.train_accuracy,
        100.0 * row.test_accuracy,
        row.lr,
        row.seconds,
        row.images_per_second,
        duration(row.seconds * (epochs - row.epoch) as f64)
    )
}

/// The model file: the last checkpoint. Written after the loop, it is also written when a
/// run stopped between its last checkpoint and the model is resumed.
fn write_model(run: &Run, last: &EpochRow) -> Result<()> {
    let bytes = std::fs::read(run.file(CHECKPOINT_FILE))?;
    crate::files::write_atomically(&run.file(MODEL_FILE), &bytes)?;
    eprintln!(
        "Done: test error {:.2}% after {} epochs (the paper reports the last epoch's error). Run directory: {}",
        100.0 * (1.0 - last.test_accuracy),
        last.epoch,
        run.dir.display()
    );
    Ok(())
}

/// The session's parameters and momentum at `position`, as the run's checkpoint; a
/// parameter that is no longer finite is divergence, and nothing is written, nor when the
/// device is lost (`saved` is the checkpoint on disk now; `epoch`, counted from 0, the one
/// being trained).
fn save_checkpoint(
    session: &Session,
    run: &Run,
    epoch: usize,
    position: Position,
    saved: Option<Position>,
) -> Result<()> {
    let (gpu, params) = (&session.gpu, &session.params);
    let lost_here = |e| lost(e, epoch, position.step, saved, run);
    let ckpt = Checkpoint {
        config: session.config,
        params: params.download(gpu).map_err(lost_here)?,
        momentum: params.download_velocity(gpu).map_err(lost_here)?,
        position,
        precision: session.precision,
        loss_scale: params.read_loss_scale(gpu).map_err(lost_here)?,
    };
    // Read back whole before the device failed? Only then is it the model's state.
    gpu.check_alive().map_err(lost_here)?;
    if let Some(tensor) = checkpoint::non_finite_tensor(&ckpt) {
        bail!(
            "training diverged: {tensor} is no longer finite by step {}; {}. The learning rate is most \
             likely too high: start a new run with a lower --lr",
            position.step,
            kept_checkpoint(position.epoch)
        );
    }
    checkpoint::save(&run.file(CHECKPOINT_FILE), &ckpt)
}

/// The error of a run whose device was lost in `epoch` (counted from 0) by `step`: the
/// checkpoint on disk (`saved`) is kept as it was, and the run can resume from it.
fn lost(
    e: crate::gpu::DeviceLost,
    epoch: usize,
    step: u64,
    saved: Option<Position>,
    run: &Run,
) -> anyhow::Error {
    let hint = if e.0.contains("emory") {
        " The device ran out of memory: resume on a device with more, or start again with a smaller --batch-size."
    } else {
        " This happens when the driver resets the GPU (a hang or timeout, a driver update, sleep, an unplugged GPU)."
    };
    anyhow::anyhow!("{e} in epoch {} by step {step}.{hint} {}", epoch + 1, what_is_kept(saved, run))
}

/// The run's checkpoint on disk, which a failure must leave as it is, and when the next
/// one inside an epoch is due.
struct Checkpoints<'a> {
    run: &'a Run,
    saved: Option<Position>,
    last: Instant,
    every: Option<Duration>,
}

impl<'a> Checkpoints<'a> {
    fn new(run: &'a Run, every: Option<Duration>) -> Self {
        let saved = match &run.start {
            Start::Resume { checkpoint, .. } => Some(checkpoint.position),
            Start::New => None,
        };
        stop::set_kept(saved.is_some(), what_is_kept(saved, run));
        Checkpoints { run, saved, last: Instant::now(), every }
    }

    /// Whether `every` has passed since the last checkpoint.
    fn due(&self) -> bool {
        self.every.is_some_and(|every| self.last.elapsed() >= every)
    }

    /// Device 0's state at `position`, reached in `epoch` (counted from 0), as the run's
    /// checkpoint, once every device is found to hold the same weights.
    fn save(&mut self, replicas: &Replicas, epoch: usize, position: Position) -> Result<()> {
        replicas.check_identical()?;
        if replicas.leads() {
            save_checkpoint(replicas.first(), self.run, epoch, position, self.saved)?;
        }
        self.saved = Some(position);
        stop::set_kept(true, what_is_kept(self.saved, self.run));
        self.last = Instant::now();
        Ok(())
    }

    /// The error of a device lost in `epoch` by `step`, naming the checkpoint that is kept.
    fn lost(&self, epoch: usize, step: u64) -> impl Fn(crate::gpu::DeviceLost) -> anyhow::Error + '_ {
        move |e| lost(e, epoch, step, self.saved, self.run)
    }
}

/// What a run that fails or quits now leaves: the checkpoint on disk (`saved`), and how to
/// continue from it.
fn what_is_kept(saved: Option<Position>, run: &Run) -> String {
    match saved {
        Some(p) => format!(
            "The checkpoint of step {} (epoch {}) is kept as it was. Continue with: shakeshake train --resume {}",
            p.step,
            p.epoch + usize::from(p.batches > 0),
            run.dir.display()
        ),
        None => "No checkpoint had been written yet: start the run again.".to_string(),
    }
}

/// A loss that is no longer finite ends the run at once: nothing after it is worth keeping,
/// and the last checkpoint (written before it) stays as it was.
fn check_finite(metrics: &[f32], epoch: usize, step: u64) -> Result<()> {
    if metrics[0].is_finite() {
        return Ok(());
    }
    bail!(
        "training diverged: the loss is {} in epoch {} by step {step}; {}. The learning rate is most \
         likely too high: start a new run with a lower --lr",
        metrics[3],
        epoch + 1,
        kept_checkpoint(epoch)
    )
}

/// What is left when a run fails in `epoch` (counted from 0).
fn kept_checkpoint(epoch: usize) -> String {
    if epoch > 0 {
        format!("the checkpoint of epoch {epoch} is kept as it was")
    } else {
        "no checkpoint was written".to_string()
    }
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

fn running_message(m: &[f32], done: u64, started: Instant) -> String {
    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
    if m[2] > 0.0 {
        format!("{rate:.0} img/s  loss {:.4}  acc {:.1}%", m[0] / m[2], 100.0 * m[1] / m[2])
    } else {
        format!("{rate:.0} img/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The note on a CPU adapter suggests the quick look only to a run larger than it.
    #[test]
    fn the_quick_look_is_suggested_only_to_larger_runs() {
        let note = |larger| cpu_adapter_note("lavapipe", 100.0, 6_000.0, larger);
        assert!(note(true).contains("For a quick look: --depth 8"), "{}", note(true));
        assert!(!note(false).contains("quick look"), "{}", note(false));
        assert!(note(false).contains("about 1m 00s more"), "{}", note(false));
    }
}
