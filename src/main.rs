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
    /// Time every operation of Shake-Shake 26 2x32d at batch 128.
    Ops {
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
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Adapters => adapters(),
        Command::Bench { what: BenchCommand::Ops { adapter, json, all_variants, batch_size, filter } } => {
            let gpu = adapter.open()?;
            let filter = bench::Filter(filter.unwrap_or_default());
            let print = |f: bench::OpFigure| {
                if json {
                    println!("{}", serde_json::to_string(&f).expect("figures serialise"));
                } else {
                    println!("{}", bench::format_figure(&f));
                }
            };
            bench::conv_figures(&gpu, batch_size, all_variants, &filter, print);
            bench::other_figures(&gpu, batch_size, &filter, print);
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
