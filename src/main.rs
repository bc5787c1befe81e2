//! The `shakeshake` command line.

use anyhow::Result;
use clap::{Parser, Subcommand};
use shakeshake::bench;
use shakeshake::gpu::{AdapterChoice, Gpu, describe_info, list_adapters};

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
    /// of an adapter's name. Default: $SHAKESHAKE_ADAPTER, else high-performance.
    #[arg(long)]
    adapter: Option<String>,
}

impl AdapterArg {
    fn open(&self) -> Result<Gpu> {
        let gpu = Gpu::open(&AdapterChoice::from_flag_or_env(self.adapter.as_deref()))?;
        eprintln!("GPU: {} — {}", gpu.describe(), gpu.reason);
        Ok(gpu)
    }
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter with its backend, device type, driver and the limits that matter.
    Adapters,
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
        /// The network's width k (stages of k, 2k, 4k channels).
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
    },
    /// Steady-state training throughput, and the share of GPU time per operation kind.
    Train {
        #[command(flatten)]
        adapter: AdapterArg,
        #[arg(long, default_value_t = 26)]
        depth: usize,
        #[arg(long, default_value_t = 32)]
        width: usize,
        #[arg(long, default_value_t = 128)]
        batch_size: usize,
        /// Shake variant, FORWARD-BACKWARD-LEVEL.
        #[arg(long, default_value = "shake-shake-image")]
        variant: String,
        /// Timed steps (after two warm-up steps).
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Print one JSON object instead of a report.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Adapters => adapters(),
        Command::Bench {
            what: BenchCommand::Ops { adapter, width, json, all_variants, batch_size, filter },
        } => {
            let gpu = adapter.open()?;
            let filter = bench::Filter(filter.unwrap_or_default());
            let print = |f: bench::OpFigure| {
                if json {
                    println!("{}", serde_json::to_string(&f).expect("figures serialise"));
                } else {
                    println!("{}", bench::format_figure(&f));
                }
            };
            bench::conv_figures(&gpu, batch_size, width, all_variants, &filter, print);
            bench::other_figures(&gpu, batch_size, &filter, print);
            Ok(())
        }
        Command::Bench {
            what: BenchCommand::Train { adapter, depth, width, batch_size, variant, steps, json },
        } => {
            let config = shakeshake::model::ModelConfig::with_variant(depth, width, &variant)?;
            let gpu = adapter.open()?;
            let f = bench::train_figure(&gpu, config, batch_size, 2, steps);
            if json {
                println!("{}", serde_json::to_string(&f)?);
            } else {
                println!(
                    "Shake-Shake {} {} batch {}: {:.1} images/s ({:.1} ms a step, {} dispatches)",
                    config.paper_name(),
                    f.variant,
                    f.batch,
                    f.images_per_second,
                    f.step_ms,
                    f.dispatches_per_step
                );
                for (kind, ms, share) in &f.gpu_time {
                    println!("  {kind:<34} {ms:9.2} ms {:5.1}%", share * 100.0);
                }
            }
            Ok(())
        }
    }
}

fn adapters() -> Result<()> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        // The chooser's error says what to install.
        shakeshake::gpu::choose_adapter(&AdapterChoice::HighPerformance)?;
    }
    for (i, a) in adapters.iter().enumerate() {
        let l = a.limits();
        println!("{i}: {}", describe_info(&a.get_info()));
        println!(
            "   max storage binding {} MiB, max buffer {} MiB, workgroup storage {} KiB, {} invocations/workgroup, subgroups {}..{}, timestamps {}",
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            a.get_info().subgroup_min_size,
            a.get_info().subgroup_max_size,
            a.features().contains(wgpu::Features::TIMESTAMP_QUERY),
        );
    }
    Ok(())
}
