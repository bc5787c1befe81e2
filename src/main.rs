//! The `shakeshake` command line.

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use shakeshake::bench;
use shakeshake::cpu::cross_entropy::softmax;
use shakeshake::gpu::{AdapterChoice, Gpu, PrecisionChoice, describe_info, list_adapters};
use shakeshake::kernels::Order;
use shakeshake::model::graph::Node;
use shakeshake::model::memory::{Memory, RunSize};
use shakeshake::model::{Graph, Mode, ModelConfig};
use shakeshake::shapes::{CLASS_NAMES, IMAGE_BYTES, Precision};
use shakeshake::train::data::{self, Dataset};
use shakeshake::train::options::TrainOptions;
use shakeshake::train::ranks::Ranks;
use shakeshake::train::run_dir::{Run, default_run_dir};
use shakeshake::train::session::{Session, check_fits, max_batch};
use shakeshake::train::shares::Shares;
use shakeshake::train::{checkpoint, download, trainer};
use std::path::PathBuf;
use std::rc::Rc;

#[derive(Parser)]
#[command(
    name = "shakeshake",
    version,
    about = "Train Shake-Shake on CIFAR-10 on any GPU (Vulkan, Metal, DX12, GL)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct AdapterArg {
    /// Which GPU: high-performance, low-power, an index from `shakeshake adapters`, or part
    /// of an adapter's name. Default: $SHAKESHAKE_ADAPTER, else high-performance. `train`
    /// takes several, separated by commas (0,1; 0,0 is two devices on one adapter).
    #[arg(long)]
    adapter: Option<String>,
}

impl AdapterArg {
    fn open(&self) -> Result<Gpu> {
        let choices = AdapterChoice::list_from_flag_or_env(self.adapter.as_deref());
        if choices.len() > 1 {
            anyhow::bail!(
                "--adapter (or SHAKESHAKE_ADAPTER) lists {} adapters; only `train` runs on several, every \
                 other command on one",
                choices.len()
            );
        }
        let gpu = Gpu::open(&choices[0])?;
        eprintln!("GPU: {} — {}", gpu.describe(), gpu.reason);
        Ok(gpu)
    }

    /// Every adapter listed, opened in order (one device each, even for the same adapter).
    /// Under MPI, without --adapter or SHAKESHAKE_ADAPTER, each process on a machine takes its
    /// own GPU (by its local rank).
    fn open_all(&self) -> Result<Vec<Gpu>> {
        let given = self.adapter.is_some() || std::env::var_os("SHAKESHAKE_ADAPTER").is_some();
        if let (false, Some(n)) = (given, shakeshake::train::ranks::local_rank()) {
            let gpu = Gpu::open(&AdapterChoice::NthHighPerformance(n))?;
            eprintln!("GPU: {} — {}", gpu.describe(), gpu.reason);
            return Ok(vec![gpu]);
        }
        let choices = AdapterChoice::list_from_flag_or_env(self.adapter.as_deref());
        if choices.len() == 1 {
            return Ok(vec![self.open()?]);
        }
        choices
            .iter()
            .enumerate()
            .map(|(d, choice)| {
                let gpu = Gpu::open(choice)?;
                eprintln!("GPU {d}: {} — {}", gpu.describe(), gpu.reason);
                Ok(gpu)
            })
            .collect()
    }

    /// How many adapters are listed.
    fn count(&self) -> usize {
        AdapterChoice::list_from_flag_or_env(self.adapter.as_deref()).len()
    }
}

/// Which network, at which batch size (`graph` and `bench train`).
#[derive(clap::Args)]
struct NetworkArgs {
    #[arg(long, default_value_t = 26)]
    depth: usize,
    #[arg(long, default_value_t = 32)]
    width: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Shake variant, FORWARD-BACKWARD-LEVEL.
    #[arg(long, default_value = "shake-shake-image")]
    variant: String,
}

impl NetworkArgs {
    fn config(&self) -> Result<ModelConfig> {
        ModelConfig::with_variant(self.depth, self.width, &self.variant)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Train Shake-Shake on CIFAR-10 (the paper's recipe by default).
    Train {
        #[command(flatten)]
        adapter: AdapterArg,
        #[command(flatten)]
        options: Box<TrainOptions>,
        /// Where the run's files go: options.json, metrics.csv, curves.png, checkpoints.
        /// Default: runs/<depth>-2x<width>d-seed<seed>.
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// Continue the run in RUN_DIR from its last checkpoint, with the options it was started with.
        #[arg(long, value_name = "RUN_DIR")]
        resume: Option<PathBuf>,
        /// Download CIFAR-10 into --data first if it is not there.
        #[arg(long)]
        download: bool,
        /// Stop after this many epochs of this invocation (continue later with --resume).
        #[arg(long, value_name = "EPOCHS")]
        stop_after: Option<usize>,
        /// Also write a checkpoint inside an epoch once this long has passed since the last
        /// one (30s, 10m, 2h; 0 for only at epoch ends). Ctrl-C writes one too, and stops.
        #[arg(long, value_name = "TIME", default_value = "10m", value_parser = parse_interval)]
        checkpoint_every: std::time::Duration,
    },
    /// Test accuracy, overall and per class, of a checkpoint.
    Eval {
        #[command(flatten)]
        adapter: AdapterArg,
        #[arg(long)]
        checkpoint: PathBuf,
        /// Folder holding cifar-10-batches-bin/ or cifar-10-binary.tar.gz.
        #[arg(long, default_value = "assets")]
        data: PathBuf,
        #[arg(long, default_value_t = 128)]
        batch_size: usize,
        /// Print one JSON object: accuracy, per_class, images.
        #[arg(long)]
        json: bool,
        /// What activations are stored in: f32, f16, or auto (f16 on a GPU that has it).
        /// The weights are the checkpoint's f32 ones either way.
        #[arg(long, value_enum, default_value = "f32")]
        precision: PrecisionChoice,
        #[arg(long, default_value_t = 10_000, hide = true)]
        records_per_file: usize,
    },
    /// Classify images (PNG or JPEG, any size; resized to 32x32): the top 3 classes.
    Predict {
        #[command(flatten)]
        adapter: AdapterArg,
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Fetch the official CIFAR-10 binary archive, check it and unpack it into --data.
    Download {
        #[arg(long, default_value = "assets")]
        data: PathBuf,
        #[arg(long, default_value = download::URL, hide = true)]
        url: String,
        #[arg(long, default_value = download::MD5, hide = true)]
        md5: String,
        #[arg(long, default_value_t = 10_000, hide = true)]
        records_per_file: usize,
        /// Seconds of silence from the server after which the download is given up.
        #[arg(long, default_value_t = download::STALL_SECONDS)]
        stall_seconds: u64,
    },
    /// List every adapter with its backend, device type, driver and the limits that matter.
    Adapters,
    /// Check every shader against the CPU reference on this adapter: every op and kernel
    /// variant on edge shapes, and a small network's training step. Exits non-zero on any
    /// failure; paste its output into a bug report.
    Selftest {
        #[command(flatten)]
        adapter: AdapterArg,
        /// One JSON object a check, instead of the table.
        #[arg(long)]
        json: bool,
        /// Check the kernels of this precision only. Default: every precision the adapter
        /// runs (f16 where it has f16 in shaders).
        #[arg(long, value_enum)]
        precision: Option<PrecisionChoice>,
    },
    /// Create every pipeline a network's training and evaluation could use on this adapter,
    /// running nothing: each pipeline's label is printed as it is created, and one the driver
    /// will not compile is listed with the compiler's message (exits non-zero then).
    Kernels {
        #[command(flatten)]
        adapter: AdapterArg,
        #[command(flatten)]
        network: NetworkArgs,
        /// Every convolution variant the device supports, not only those the tuner would
        /// consider on it.
        #[arg(long)]
        all_variants: bool,
        /// Create the pipelines one at a time, each name printed before it is created (for
        /// a driver layer that reports on each, as scripts/amd-stats.sh uses), not on every core.
        #[arg(long)]
        one_at_a_time: bool,
        /// The kernels for activations in f32, f16, or auto (f16 on a GPU that has it).
        #[arg(long, value_enum, default_value = "f32")]
        precision: PrecisionChoice,
    },
    /// Print a shader module as the driver gets it: its WGSL files (shaders/) joined in
    /// order. Without a module, list the modules and their files.
    Shader {
        /// A module's name, e.g. conv2d_forward_tiled.
        module: Option<String>,
    },
    /// Print the training step: every node in order, its tensors' shapes and buffers.
    Graph {
        #[command(flatten)]
        network: NetworkArgs,
        /// The derived backward pass too, not only the forward.
        #[arg(long)]
        backward: bool,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time every operation of Shake-Shake (26 2x32d by default) at batch 128.
    Ops {
        /// The network's width k (stages of k, 2k, 4k channels): every operation is timed at
        /// the shapes this width gives it.
        #[arg(long, default_value_t = 32)]
        width: usize,
        #[command(flatten)]
        adapter: AdapterArg,
        /// Print one JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Time every kernel variant of each convolution, not only the chosen one.
        #[arg(long)]
        all_variants: bool,
        /// Batch size.
        #[arg(long, default_value_t = 128)]
        batch_size: usize,
        /// Only rows whose op, pass or shape contains this text (e.g. "grad_input", "@16").
        #[arg(long)]
        filter: Option<String>,
        /// The device's FP32 peak in GFLOP/s, to print each convolution's fraction of it
        /// (known for some GPUs by name).
        #[arg(long)]
        peak_gflops: Option<f64>,
        /// What activations are stored in: f32, f16, or auto (f16 on a GPU that has it).
        #[arg(long, value_enum, default_value = "f32")]
        precision: PrecisionChoice,
    },
    /// Steady-state training throughput, and the share of GPU time per operation kind.
    Train {
        #[command(flatten)]
        adapter: AdapterArg,
        #[command(flatten)]
        network: NetworkArgs,
        /// Timed steps (after two warm-up steps).
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Print one JSON object instead of a report.
        #[arg(long)]
        json: bool,
        /// What activations are stored in: f32, f16, or auto (f16 on a GPU that has it).
        #[arg(long, value_enum, default_value = "f32")]
        precision: PrecisionChoice,
    },
}

fn main() -> Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match run(cli, &matches) {
        Err(e) if e.downcast_ref::<trainer::Interrupted>().is_some() => {
            // Empty in the ranks but 0 of an MPI run: rank 0 says it.
            if !e.to_string().is_empty() {
                eprintln!("{e}");
            }
            // The conventional status of a program stopped by SIGINT.
            std::process::exit(130)
        }
        result => result,
    }
}

/// "30s", "10m", "2h" ("0": never).
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let trimmed = text.trim();
    let (number, unit) =
        trimmed.split_at(trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len()));
    let scale = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{text:?} is not a time like 30s, 10m or 2h")),
    };
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a time like 30s, 10m or 2h"))?;
    Ok(std::time::Duration::from_secs(n * scale))
}

/// Each command is one function below.
fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<()> {
    match cli.command {
        Command::Train {
            adapter,
            options,
            run_dir,
            resume,
            download: fetch,
            stop_after,
            checkpoint_every,
        } => {
            let given = matches.subcommand_matches("train").map(given_flags).unwrap_or_default();
            let start = RunStart { run_dir, resume, given, fetch, stop_after, checkpoint_every };
            train(&adapter, *options, start)
        }
        Command::Eval { adapter, checkpoint, data: dir, batch_size, json, precision, records_per_file } => {
            let data = EvalData { dir: &dir, batch_size, records_per_file };
            eval(&adapter, &checkpoint, data, json, precision)
        }
        Command::Predict { adapter, checkpoint, images } => predict(&adapter, &checkpoint, &images),
        Command::Download { data: dir, url, md5, records_per_file, stall_seconds } => {
            let source = download::Source { url: &url, md5: &md5, stall_seconds: stall_seconds.max(1) };
            download::download(&dir, &source, records_per_file)?;
            Ok(())
        }
        Command::Adapters => adapters(),
        Command::Selftest { adapter, json, precision } => selftest(&adapter, json, precision),
        Command::Kernels { adapter, network, all_variants, one_at_a_time, precision } => {
            let order = if one_at_a_time { Order::OneAtATime } else { Order::Parallel };
            let gpu = adapter.open()?;
            let precision = precision_on(&gpu, precision)?;
            kernels(&gpu, &network, precision, all_variants, order)
        }
        Command::Shader { module } => shader(module.as_deref()),
        Command::Graph { network, backward } => graph(&network, backward),
        Command::Bench {
            what:
                BenchCommand::Ops {
                    adapter,
                    width,
                    json,
                    all_variants,
                    batch_size,
                    filter,
                    peak_gflops,
                    precision,
                },
        } => {
            at_least_one("--batch-size", batch_size)?;
            let gpu = adapter.open()?;
            let precision = precision_on(&gpu, precision)?;
            check_fits(&gpu, ModelConfig::new(26, width)?, batch_size, Mode::Train, precision)?;
            let filter = bench::Filter(filter.unwrap_or_default());
            let print = |f: bench::OpFigure| {
                if json {
                    println!("{}", serde_json::to_string(&f).expect("figures serialise"));
                } else {
                    println!("{}", bench::format_figure(&f));
                }
            };
            let ops = bench::OpsBench { batch: batch_size, width, precision, all_variants };
            bench::op_figures(&gpu, &ops, &filter, peak_gflops, print)
        }
        Command::Bench { what: BenchCommand::Train { adapter, network, steps, json, precision } } => {
            bench_train(&adapter, &network, steps, json, precision)
        }
    }
}

/// The precision `choice` gives on `gpu`, said on stderr with why.
fn precision_on(gpu: &Gpu, choice: PrecisionChoice) -> Result<Precision> {
    let (precision, why) = gpu.precision(choice)?;
    eprintln!("Activations in {}: {why}", precision.name());
    Ok(precision)
}

/// How `train` starts: a new run or a resumed one, and when it stops and checkpoints.
struct RunStart {
    run_dir: Option<PathBuf>,
    resume: Option<PathBuf>,
    /// The flags given on the command line (a resumed run refuses to change most).
    given: Vec<String>,
    fetch: bool,
    stop_after: Option<usize>,
    checkpoint_every: std::time::Duration,
}

fn train(adapter: &AdapterArg, options: TrainOptions, start: RunStart) -> Result<()> {
    if let Some(epochs) = start.stop_after {
        at_least_one("--stop-after", epochs)?;
    }
    let Some(ranks) = join_ranks()? else {
        return train_in_process(adapter, options, start, None);
    };
    let (rank, size) = (ranks.rank(), ranks.size());
    // The ranks but 0 print only their errors (once this is dropped), unless asked.
    #[cfg(feature = "mpi")]
    let quiet = (rank > 0 && std::env::var_os("SHAKESHAKE_VERBOSE_RANKS").is_none())
        .then(shakeshake::train::ranks::mpi_world::Quiet::begin);
    let result = train_in_process(adapter, options, start, Some(ranks.clone()));
    #[cfg(feature = "mpi")]
    drop(quiet);
    match result {
        Err(e) if e.downcast_ref::<trainer::Interrupted>().is_none() => {
            // The other ranks would wait for this one in their next sum: end them all.
            eprintln!("Error in rank {rank} of {size}: {e:#}");
            ranks.abort(1)
        }
        other => other,
    }
}

/// MPI's other processes, when `mpirun` started this one with others.
#[cfg(feature = "mpi")]
fn join_ranks() -> Result<Option<Rc<dyn Ranks>>> {
    Ok(shakeshake::train::ranks::mpi_world::join()?.map(|world| Rc::new(world) as Rc<dyn Ranks>))
}

/// Without MPI, a process `mpirun` started beside others would train alone: refused.
#[cfg(not(feature = "mpi"))]
fn join_ranks() -> Result<Option<Rc<dyn Ranks>>> {
    match shakeshake::train::ranks::launched_size() {
        Some(size) if size > 1 => anyhow::bail!(
            "mpirun started {size} processes, but this build has no MPI: build with `cargo build --release \
             --features mpi` (it needs Open MPI or MPICH)"
        ),
        _ => Ok(None),
    }
}

/// `train` in this process, on the adapters `--adapter` lists, with `ranks` under MPI.
fn train_in_process(
    adapter: &AdapterArg,
    options: TrainOptions,
    start: RunStart,
    ranks: Option<Rc<dyn Ranks>>,
) -> Result<()> {
    // Under MPI a process trains on one device, the run's devices being the ranks.
    let devices = ranks.as_ref().map_or(adapter.count(), |r| r.size());
    if ranks.is_some() && start.fetch {
        anyhow::bail!(
            "under mpirun, download the data first (`shakeshake download`), then train without --download"
        );
    }
    let run = match start.resume {
        Some(dir) => {
            let run = resume_run(&dir, &start.given, options.data)?;
            let recorded = run.options.shares.as_ref().map_or(1, Vec::len);
            if recorded != devices && ranks.is_some() {
                anyhow::bail!(
                    "{} trained on {recorded} device(s); under mpirun it resumes on as many processes \
                     (mpirun -np {recorded}), so that it continues exactly. Without mpirun it resumes on \
                     any number of devices, not exactly",
                    dir.display()
                );
            }
            if recorded != devices {
                eprintln!(
                    "Note: this run trained on {recorded} device(s) and continues on {devices}. Batch norm takes \
                     its statistics over each device's share of a batch, so the run goes on, but not as it \
                     would have on {recorded}; for that, resume with --adapter listing {recorded} adapters."
                );
            }
            run
        }
        None => {
            let dir = start.run_dir.unwrap_or_else(|| default_run_dir(&options));
            Run::new(with_shares(options, devices)?, dir)?
        }
    };
    // The data before the device: a missing file should not wait for one.
    let (train, test) = load_or_download(&run.options.data, run.options.records_per_file, start.fetch)?;
    // A Ctrl-C, SIGTERM or SIGHUP stops after the step in flight, with a checkpoint.
    shakeshake::train::stop::listen()?;
    let checkpoint_every = (!start.checkpoint_every.is_zero()).then_some(start.checkpoint_every);
    let schedule = trainer::Schedule { stop_after: start.stop_after, checkpoint_every };
    trainer::train(adapter.open_all()?, ranks, &run, train, test, schedule)?;
    Ok(())
}

/// A new run's options with the shares of its `devices` recorded: `--shares` must list one
/// for each; equal ones when it is not given.
fn with_shares(mut options: TrainOptions, devices: usize) -> Result<TrainOptions> {
    match &options.shares {
        Some(weights) if weights.len() != devices => anyhow::bail!(
            "--shares lists {} weights, but --adapter lists {devices} adapters: give one weight an adapter",
            weights.len()
        ),
        Some(_) => {}
        None if devices > 1 => options.shares = Some(vec![1; devices]),
        None => {}
    }
    Ok(options)
}

/// The test set `eval` reads, and its batch.
struct EvalData<'a> {
    dir: &'a std::path::Path,
    batch_size: usize,
    records_per_file: usize,
}

fn eval(
    adapter: &AdapterArg,
    checkpoint: &std::path::Path,
    data: EvalData,
    json: bool,
    precision: PrecisionChoice,
) -> Result<()> {
    let test = data::load_test(data.dir, Some(data.records_per_file))?;
    let ckpt = checkpoint::load(checkpoint, None)?;
    let mut session = Session::new(adapter.open()?, ckpt.config, &ckpt.params, None)?;
    session.precision = precision_on(&session.gpu, precision)?;
    let precision = session.precision;
    let limit = max_batch(&session.gpu.limits, ckpt.config, Mode::Eval, precision);
    let batch = data.batch_size.min(limit).min(test.len()).max(1);
    let graphs = session.graphs(Mode::Eval, batch, test.len())?;
    let e = session.evaluate(&graphs, &test)?;
    if json {
        let per_class: serde_json::Map<String, serde_json::Value> =
            CLASS_NAMES.iter().zip(&e.per_class).map(|(n, a)| (n.to_string(), (*a).into())).collect();
        let out = serde_json::json!({ "accuracy": e.accuracy, "per_class": per_class, "images": e.images, "loss": e.loss });
        println!("{out}");
        return Ok(());
    }
    println!(
        "Shake-Shake {} ({}): test accuracy {:.2}% on {} images (loss {:.4})",
        ckpt.config.paper_name(),
        ckpt.config.variant_name(),
        100.0 * e.accuracy,
        e.images,
        e.loss
    );
    for (name, a) in CLASS_NAMES.iter().zip(&e.per_class) {
        println!("  {name:<11} {:6.2}%", 100.0 * a);
    }
    Ok(())
}

fn graph(network: &NetworkArgs, backward: bool) -> Result<()> {
    let graph = Graph::build(network.config()?, network.batch_size.max(1), Mode::Train);
    println!("{}", graph.summary());
    for (line, node) in graph.node_lines().iter().zip(&graph.nodes) {
        if backward || matches!(node, Node::Forward(_)) {
            println!("{line}");
        }
    }
    Ok(())
}

fn bench_train(
    adapter: &AdapterArg,
    network: &NetworkArgs,
    steps: usize,
    json: bool,
    precision: PrecisionChoice,
) -> Result<()> {
    let config = network.config()?;
    at_least_one("--batch-size", network.batch_size)?;
    at_least_one("--steps", steps)?;
    let ranks = join_ranks()?;
    // Under MPI, rank 0 reports; the others only their errors.
    #[cfg(feature = "mpi")]
    let _quiet =
        ranks.as_ref().filter(|r| r.rank() > 0).map(|_| shakeshake::train::ranks::mpi_world::Quiet::begin());
    let gpus = adapter.open_all()?;
    let (precision, why) = shakeshake::train::precision::of_run(&gpus, ranks.as_deref(), precision)?;
    eprintln!("Activations in {}: {why}", precision.name());
    let (first, devices) = ranks.as_ref().map_or((0, gpus.len()), |r| (r.rank(), r.size()));
    let shares = Shares::equal(devices);
    shares.check(network.batch_size, None)?;
    for (gpu, share) in gpus.iter().zip(shares.split(network.batch_size).into_iter().skip(first)) {
        check_fits(gpu, config, share.len(), Mode::Train, precision)?;
    }
    let f = bench::train_figure(gpus, ranks, config, precision, network.batch_size, 2, steps)?;
    if first > 0 {
        return Ok(());
    }
    if json {
        println!("{}", serde_json::to_string(&f)?);
        return Ok(());
    }
    println!(
        "Shake-Shake {} {} batch {}, {} activations: {:.1} images/s ({:.1} ms a step, {} dispatches binding \
         {:.0} MB{}; {} pipelines created)",
        config.paper_name(),
        f.variant,
        f.batch,
        f.precision,
        f.images_per_second,
        f.step_ms,
        f.dispatches_per_step,
        f.bytes_per_step as f64 / 1e6,
        if f.devices > 1 { " on device 0" } else { "" },
        f.pipelines
    );
    if let Some(ms) = f.all_reduce_ms {
        println!(
            "  the batch split over {} devices: summing the gradients costs {ms:.1} ms a step ({:.1}%), over \
             each device running its share alone",
            f.devices,
            100.0 * ms / f.step_ms
        );
    }
    for k in &f.kinds {
        let time = match (k.ms, k.share) {
            (Some(ms), Some(share)) => format!("{ms:9.2} ms {:5.1}%", share * 100.0),
            _ => String::new(),
        };
        println!("  {:<34} {:4} dispatches {:8.1} MB {time}", k.kind, k.dispatches, k.bytes as f64 / 1e6);
    }
    Ok(())
}

/// CIFAR-10 from `dir`; with `fetch`, downloaded first when it is not there.
fn load_or_download(
    dir: &std::path::Path,
    records_per_file: usize,
    fetch: bool,
) -> Result<(Dataset, Dataset)> {
    match data::load(dir, Some(records_per_file)) {
        Err(_) if fetch => {
            download::download(dir, &download::Source::OFFICIAL, records_per_file)?;
            data::load(dir, Some(records_per_file))
        }
        loaded => loaded,
    }
}

fn adapters() -> Result<()> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        // The chooser's error says what to install.
        shakeshake::gpu::choose_adapter(&AdapterChoice::HighPerformance)?;
    }
    let default = ModelConfig::new(26, 32)?;
    for (i, a) in adapters.iter().enumerate() {
        let l = a.limits();
        println!("{i}: {}", describe_info(&a.get_info()));
        println!(
            "   max storage binding {} MiB, max buffer {} MiB, workgroup storage {} KiB, {} invocations/workgroup, subgroups {}..{}, timestamps {}, f16 in shaders {}",
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            a.get_info().subgroup_min_size,
            a.get_info().subgroup_max_size,
            a.features().contains(wgpu::Features::TIMESTAMP_QUERY),
            a.features().contains(wgpu::Features::SHADER_F16),
        );
        // Each precision it runs: f16 where it has f16 in shaders.
        let precisions = if a.features().contains(wgpu::Features::SHADER_F16) {
            &Precision::ALL[..]
        } else {
            &[Precision::F32][..]
        };
        for &precision in precisions {
            let with = format!("with {} activations", precision.name());
            let verdict = match shakeshake::gpu::unusable(a) {
                Some(problem) => format!("cannot train: {problem}"),
                None => match max_batch(&l, default, Mode::Train, precision) {
                    0 => format!("cannot train Shake-Shake 26 2x32d {with}: not one image fits its limits"),
                    n if n < 128 => {
                        format!(
                            "trains Shake-Shake 26 2x32d {with} only up to batch {n} (the paper's is 128)"
                        )
                    }
                    n => format!("trains Shake-Shake 26 2x32d {with} at the paper's batch 128 (up to {n})"),
                },
            };
            // The full CIFAR-10 run, before its kernels are chosen.
            let run =
                RunSize { batch: 128, train_images: 50_000, test_images: 10_000, bn_group: None, precision };
            let on_gpu = a.get_info().device_type != wgpu::DeviceType::Cpu;
            let memory = Memory::at_most(default, run, on_gpu);
            println!("   {verdict}; that run needs at most {memory} of device memory");
        }
    }
    Ok(())
}

fn kernels(
    gpu: &Gpu,
    network: &NetworkArgs,
    precision: Precision,
    all_variants: bool,
    order: Order,
) -> Result<()> {
    at_least_one("--batch-size", network.batch_size)?;
    let config = network.config()?;
    let started = std::time::Instant::now();
    let created = shakeshake::kernels::create_all(
        gpu,
        config,
        network.batch_size,
        precision,
        all_variants,
        order,
        |line| println!("{line}"),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    for failure in &created.failed {
        println!("FAILED: {failure}");
    }
    let summary = format!(
        "{} pipelines for {} at batch {}, {} activations, on {} (in {seconds:.1} s)",
        created.pipelines,
        config.paper_name(),
        network.batch_size,
        precision.name(),
        gpu.describe()
    );
    if !created.failed.is_empty() {
        anyhow::bail!("{} of the {summary} did not compile (listed above)", created.failed.len());
    }
    eprintln!("{summary}: all compiled");
    Ok(())
}

fn shader(module: Option<&str>) -> Result<()> {
    use shakeshake::gpu::shaders::{all_modules, source};
    let Some(name) = module else {
        for def in all_modules() {
            println!("{:36} {}", def.name, def.files.join(" + "));
        }
        return Ok(());
    };
    if !all_modules().any(|def| def.name == name) {
        let names: Vec<&str> = all_modules().map(|def| def.name).collect();
        anyhow::bail!("there is no shader module {name:?}; the modules are: {}", names.join(", "));
    }
    println!("{}", source(name));
    Ok(())
}

fn selftest(adapter: &AdapterArg, json: bool, precision: Option<PrecisionChoice>) -> Result<()> {
    let gpu = adapter.open()?;
    let precisions = match precision {
        Some(choice) => vec![gpu.precision(choice)?.0],
        None if gpu.features.f16 => Precision::ALL.to_vec(),
        None => {
            eprintln!("Checking f32 kernels only: this adapter has no f16 in shaders.");
            vec![Precision::F32]
        }
    };
    let started = std::time::Instant::now();
    if !json {
        println!(
            "{:<14} {:<36} {:<24} {:<32} {:>4} {:>10} {:>9}  result",
            "op", "pass", "variant", "shape", "", "max error", "tolerance"
        );
    }
    let checks = shakeshake::selftest::run(&gpu, &precisions, |c| {
        if json {
            let mut object = serde_json::to_value(c).expect("checks serialise");
            object["passed"] = c.passed().into();
            println!("{object}");
        } else {
            let result = if c.passed() { "pass" } else { "FAIL" };
            println!(
                "{:<14} {:<36} {:<24} {:<32} {:>4} {:>10.2e} {:>9.0e}  {result}",
                c.op, c.pass, c.variant, c.shape, c.precision, c.max_error, c.tolerance
            );
            if let Some(failure) = &c.failure {
                println!("    {failure}");
            }
        }
    });
    if !json {
        let passes =
            shakeshake::checks::conv2d::shapes().len() * shakeshake::ops::conv2d::ConvPass::ALL.len();
        println!(
            "\nConvolution variants not checked on some of the {passes} passes of the edge shapes, and why:"
        );
        for (variant, why, count) in shakeshake::checks::conv2d::not_offered(&gpu) {
            println!("  {:<22} {count:>2} of {passes}: {why}", variant.name());
        }
    }
    let failed = checks.iter().filter(|c| !c.passed()).count();
    let outcome = if failed == 0 { "all passed".to_string() } else { format!("{failed} FAILED") };
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{} checks on {} in {seconds:.0} s: {outcome}", checks.len(), gpu.describe());
    if failed > 0 {
        let only_conv_variants = checks.iter().filter(|c| !c.passed()).all(|c| c.op == "conv2d");
        let consequence = if only_conv_variants {
            "training avoids a convolution variant that fails by itself"
        } else {
            "training on it would compute wrongly or not start"
        };
        anyhow::bail!(
            "{failed} of {} checks failed on {}: this adapter computes some kernels wrongly or cannot compile \
             them, and {consequence}. Please include this output in a bug report.{}",
            checks.len(),
            gpu.describe(),
            remedies(&gpu.info)
        );
    }
    Ok(())
}

/// What a user whose adapter failed `selftest` can try: the other adapters, and on DX12 the
/// DXC compiler (without it wgpu falls back to FXC, which rejects valid shaders).
fn remedies(info: &wgpu::AdapterInfo) -> String {
    let mut text = String::new();
    if info.backend == wgpu::Backend::Dx12 {
        text += "\nOn DX12 without dxcompiler.dll, wgpu compiles with the old FXC compiler: put dxcompiler.dll \
                 (https://github.com/microsoft/DirectXShaderCompiler/releases, v1.8.2502 or later) next to \
                 shakeshake or on the PATH, or use the Vulkan adapter.";
    }
    let others = shakeshake::gpu::other_usable_adapters(info);
    if !others.is_empty() {
        text +=
            &format!("\nOther adapters here (try `shakeshake selftest --adapter N`):\n{}", others.join("\n"));
    }
    text
}

/// The flags given on the command line (not defaulted), as "--name".
fn given_flags(matches: &clap::ArgMatches) -> Vec<String> {
    matches
        .ids()
        .filter(|id| matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
        .map(flag_name)
        .collect()
}

/// A clap argument's id as its flag: `batch_size` -> `--batch-size`.
fn flag_name(id: &clap::Id) -> String {
    format!("--{}", id.as_str().replace('_', "-"))
}

/// `--resume DIR`: the run continues with the options it was started with, so a flag that
/// would change them is an error rather than silently ignored. `--data` may point at
/// where the data is now.
fn resume_run(dir: &std::path::Path, given: &[String], data: PathBuf) -> Result<Run> {
    let run_flags = TrainOptions::augment_args(clap::Command::new("options"));
    let changing: Vec<&String> = given
        .iter()
        .filter(|flag| {
            *flag == "--run-dir" || run_flags.get_arguments().any(|a| flag_name(a.get_id()) == **flag)
        })
        .filter(|flag| *flag != "--data")
        .collect();
    if !changing.is_empty() {
        let list: Vec<&str> = changing.iter().map(|s| s.as_str()).collect();
        anyhow::bail!(
            "--resume continues {} with the options it was started with (its options.json), so it does \
             not take {}; leave them out, or start a new run with them",
            dir.display(),
            list.join(", ")
        );
    }
    let mut run = Run::resume(dir)?;
    if given.iter().any(|flag| flag == "--data") {
        run.options.data = std::path::absolute(&data)?;
        eprintln!("Reading the data from {} for this resume.", run.options.data.display());
    }
    Ok(run)
}

fn at_least_one(flag: &str, value: usize) -> Result<()> {
    if value == 0 {
        anyhow::bail!("{flag} must be at least 1");
    }
    Ok(())
}

/// Each image resized to 32x32 RGB, as CIFAR bytes (red plane, green, blue).
fn load_image(path: &std::path::Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // JPEG decoders fill a cut-off image with grey and say nothing; a JPEG ends with FF D9.
    let body = bytes.trim_ascii_end();
    if bytes.starts_with(&[0xFF, 0xD8]) && !body.ends_with(&[0xFF, 0xD9]) {
        eprintln!(
            "warning: {} has no JPEG end marker: it looks cut short, so its prediction may be meaningless",
            path.display()
        );
    }
    let img = image::load_from_memory(&bytes)
        .with_context(|| format!("reading {} (PNG or JPEG)", path.display()))?
        .to_rgb8();
    let small = image::imageops::resize(&img, 32, 32, image::imageops::FilterType::Triangle);
    let mut bytes = vec![0u8; IMAGE_BYTES];
    for (x, y, p) in small.enumerate_pixels() {
        for c in 0..3 {
            bytes[c * 1024 + (y * 32 + x) as usize] = p[c];
        }
    }
    Ok(bytes)
}

fn predict(adapter: &AdapterArg, checkpoint: &std::path::Path, images: &[PathBuf]) -> Result<()> {
    let ckpt = checkpoint::load(checkpoint, None)?;
    let mut set = Dataset::default();
    for path in images {
        set.pixels.extend(load_image(path)?);
        set.labels.push(0);
    }
    let session = Session::new(adapter.open()?, ckpt.config, &ckpt.params, None)?;
    let batch =
        set.len().min(128).min(max_batch(&session.gpu.limits, ckpt.config, Mode::Eval, Precision::F32));
    let graphs = session.graphs(Mode::Eval, batch, set.len())?;
    let logits = session.logits(&graphs, &set)?;
    for (path, row) in images.iter().zip(logits.chunks(10)) {
        let row: Vec<f64> = row.iter().map(|v| *v as f64).collect();
        let mut ranked: Vec<(usize, f64)> = softmax(&row).into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> =
            ranked[..3].iter().map(|(k, p)| format!("{} {:.1}%", CLASS_NAMES[*k], 100.0 * p)).collect();
        println!("{}: {}", path.display(), top.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_interval;
    use std::time::Duration;

    #[test]
    fn intervals_read_as_people_write_them() {
        assert_eq!(parse_interval("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_interval("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_interval("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_interval("0"), Ok(Duration::ZERO));
        assert!(
            parse_interval("10x").is_err() && parse_interval("m").is_err() && parse_interval("-1m").is_err()
        );
    }
}
