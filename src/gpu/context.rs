//! Choosing an adapter and opening a device with the limits and features it really has.

use crate::shapes::Precision;
use anyhow::{Context as _, Result, anyhow, bail};
use std::sync::{Arc, Mutex};

/// How the user asks for an adapter: `--adapter high-performance | low-power | <index> | <name substring>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdapterChoice {
    HighPerformance,
    LowPower,
    Index(usize),
    NameContains(String),
    /// One of several processes on a machine (MPI ranks), this one the n-th there: the n-th of
    /// the adapters as capable as the high-performance one (so each rank takes its own GPU),
    /// counted round.
    NthHighPerformance(usize),
}

impl std::str::FromStr for AdapterChoice {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "high-performance" | "" => Self::HighPerformance,
            "low-power" => Self::LowPower,
            other => match other.parse::<usize>() {
                Ok(i) => Self::Index(i),
                Err(_) => Self::NameContains(other.to_string()),
            },
        })
    }
}

impl AdapterChoice {
    /// `--adapter` if given, else the `SHAKESHAKE_ADAPTER` environment variable, else
    /// high-performance; several separated by commas (`0,1`, `high-performance,low-power`).
    pub fn list_from_flag_or_env(flag: Option<&str>) -> Vec<Self> {
        let env = std::env::var("SHAKESHAKE_ADAPTER").ok();
        let text = flag.or(env.as_deref()).unwrap_or("high-performance");
        text.split(',').map(|one| one.parse().expect("parsing an adapter choice cannot fail")).collect()
    }

    /// The first adapter `list_from_flag_or_env` lists.
    pub fn from_flag_or_env(flag: Option<&str>) -> Self {
        Self::list_from_flag_or_env(flag).swap_remove(0)
    }
}

/// `--precision`: what activations and their gradients are stored in.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionChoice {
    /// f32 everywhere: the paper's recipe, and every learning check's default.
    #[default]
    F32,
    /// f16 activations and gradients, f32 arithmetic, weights and optimizer (needs f16 in
    /// shaders).
    F16,
    /// f16 on a GPU that has f16 in shaders, f32 elsewhere (a CPU adapter gains nothing).
    Auto,
}

/// Which limits and features a device is opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitsMode {
    /// Everything the adapter offers: the normal case.
    Adapter,
    /// Only WebGPU's default limits and no optional features (no subgroups, no timestamps):
    /// what every WebGPU device must offer, to prove the program needs no more
    /// (`SHAKESHAKE_LIMITS=webgpu-default`).
    WebGpuDefault,
    /// Limits below the adapter's own, given by a test (`Gpu::open_with_limits`).
    Lowered,
}

impl LimitsMode {
    /// `SHAKESHAKE_LIMITS`: unset (or `adapter`), or `webgpu-default`.
    pub fn from_env() -> Result<LimitsMode> {
        match std::env::var("SHAKESHAKE_LIMITS").as_deref() {
            Err(_) | Ok("") | Ok("adapter") => Ok(LimitsMode::Adapter),
            Ok("webgpu-default") => Ok(LimitsMode::WebGpuDefault),
            Ok(other) => {
                bail!("SHAKESHAKE_LIMITS={other:?} is not a mode: use webgpu-default, or leave it unset")
            }
        }
    }
}

/// Optional features this program can use, and whether the device granted them.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrantedFeatures {
    /// Timestamps at the start and end of a compute pass (`TIMESTAMP_QUERY`), all the
    /// timing here uses; not timestamps inside encoders, which Apple GPUs lack.
    pub timestamps: bool,
    pub subgroups: bool,
    /// f16 in shaders (`SHADER_F16`): the f16 twins of the kernels (shaders/element_f16.wgsl).
    pub f16: bool,
}

/// An open device and what we know about it. Shared by every op; cheap to clone.
#[derive(Clone)]
pub struct Gpu {
    /// The adapter the device was opened on (see `another_device`).
    adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: GrantedFeatures,
    pub limits_mode: LimitsMode,
    /// Why this adapter was chosen, for the user.
    pub reason: String,
    /// Workgroups along x before a `grid_1d` grid spreads over y (lowered by tests, so that
    /// small grids spread too).
    pub grid_max_x: u32,
    /// The longest a single dispatch should run, in milliseconds: a convolution pass
    /// estimated to take longer is split by images (none: never split). See `dispatch_budget`.
    pub dispatch_budget_ms: Option<f64>,
    pub(crate) kernels: super::kernel::SharedKernelCache,
    /// The driver's compiled pipelines, read from disk and written back (Vulkan only).
    pub(super) pipelines_on_disk: Option<Arc<super::pipeline_cache::DiskPipelineCache>>,
    /// Why the device can no longer be used, once it cannot (see `check_alive`).
    failure: Arc<Mutex<Option<String>>>,
    /// Bytes wgpu had allocated when the device ran out of memory (where the backend tells).
    allocated_at_oom: Arc<Mutex<Option<u64>>>,
    /// How long a wait for the GPU may take before the device counts as hung (none: for
    /// ever). See `set_wait_limit`.
    wait_limit: Arc<Mutex<Option<WaitLimit>>>,
}

/// A deadline for every wait on the GPU, and what it was derived from (for the message).
#[derive(Clone, Debug)]
pub struct WaitLimit {
    pub limit: std::time::Duration,
    pub why: String,
}

/// The device can no longer be used: lost (a driver reset after a hang or timeout, a driver
/// update, sleep, an unplugged GPU) or out of memory. Nothing it computes can be trusted.
#[derive(Clone, Debug)]
pub struct DeviceLost(pub String);

impl std::fmt::Display for DeviceLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the GPU stopped working ({})", self.0)
    }
}

impl std::error::Error for DeviceLost {}

/// A power of two under WebGPU's 65,535 workgroups a dimension, so grids stay regular.
pub const GRID_MAX_X: u32 = 32768;

fn instance() -> wgpu::Instance {
    // wgpu's own variables apply (`WGPU_DX12_COMPILER=dxc`, `WGPU_BACKEND=vulkan`, ...).
    let mut descriptor = wgpu::InstanceDescriptor {
        backends: wgpu::Backends::all(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    }
    .with_env();
    // Past this share of the memory budget the driver reports (Vulkan's memory budget,
    // DX12's), creating a buffer is an out-of-memory error rather than memory paged out to
    // the system: on an iGPU sharing memory with the CPU, paging makes a run crawl.
    descriptor.memory_budget_thresholds = wgpu::MemoryBudgetThresholds {
        for_resource_creation: Some(memory_budget_percent()),
        for_device_loss: None,
    };
    wgpu::Instance::new(descriptor)
}

/// 95 % of the driver's budget; test hook: `SHAKESHAKE_MEMORY_BUDGET_PERCENT=N` (1-100).
fn memory_budget_percent() -> u8 {
    let hook = std::env::var("SHAKESHAKE_MEMORY_BUDGET_PERCENT").ok().and_then(|p| p.parse().ok());
    hook.filter(|p| (1..=100).contains(p)).unwrap_or(95)
}

/// Every adapter on every backend wgpu supports here, in a stable order.
pub fn list_adapters() -> Vec<wgpu::Adapter> {
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()))
}

const NO_ADAPTER_HELP: &str = "no GPU adapter was found. Install a Vulkan, Metal, DX12 or GL driver for your GPU; \
on a headless Linux machine without a GPU, install the software Vulkan driver: \
`sudo apt-get install mesa-vulkan-drivers`";

/// Rank used by `high-performance`: discrete > integrated > virtual > software; Vulkan/Metal/DX12 over GL.
fn performance_rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 1,
        wgpu::DeviceType::Cpu => 0,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 1,
        _ => 0,
    };
    (device, backend)
}

fn low_power_rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let (device, backend) = performance_rank(info);
    let device = match device {
        3 => 5, // integrated first
        other => other,
    };
    (device, backend)
}

/// Pick an adapter per the user's choice; the string says why, for display.
pub fn choose_adapter(choice: &AdapterChoice) -> Result<(wgpu::Adapter, String)> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        bail!(NO_ADAPTER_HELP);
    }
    let names = || {
        adapters
            .iter()
            .enumerate()
            .map(|(i, a)| format!("  {i}: {} ({:?})", a.get_info().name, a.get_info().backend))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let usable: Vec<(usize, &wgpu::Adapter)> =
        adapters.iter().enumerate().filter(|(_, a)| unusable(a).is_none()).collect();
    let pick_best = |rank: fn(&wgpu::AdapterInfo) -> (u8, u8)| {
        usable
            .iter()
            .max_by_key(|(i, a)| (rank(&a.get_info()), std::cmp::Reverse(*i)))
            .map(|(i, a)| (*i, (*a).clone()))
            .ok_or_else(|| {
                let why: Vec<String> = adapters
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        format!("  {i}: {}: {}", a.get_info().name, unusable(a).unwrap_or_default())
                    })
                    .collect();
                anyhow!("no adapter can run shakeshake's kernels:\n{}", why.join("\n"))
            })
    };
    let (index, adapter, why) = match choice {
        AdapterChoice::HighPerformance => {
            let (i, a) = pick_best(performance_rank)?;
            (i, a, "high-performance: the most capable device type found".to_string())
        }
        AdapterChoice::LowPower => {
            let (i, a) = pick_best(low_power_rank)?;
            (i, a, "low-power: integrated GPUs first".to_string())
        }
        AdapterChoice::NthHighPerformance(n) => {
            let (best, _) = pick_best(performance_rank)?;
            let best_rank = performance_rank(&adapters[best].get_info());
            let alike: Vec<&(usize, &wgpu::Adapter)> =
                usable.iter().filter(|(_, a)| performance_rank(&a.get_info()) == best_rank).collect();
            let (i, a) = alike[n % alike.len()];
            let why = format!(
                "it is process {n} on this machine, and the adapters as capable as the best are {}",
                alike.len()
            );
            (*i, (*a).clone(), why)
        }
        AdapterChoice::Index(i) => {
            let a = adapters
                .get(*i)
                .cloned()
                .ok_or_else(|| anyhow!("there is no adapter {i}; the adapters are:\n{}", names()))?;
            (*i, a, format!("adapter index {i} was asked for"))
        }
        AdapterChoice::NameContains(s) => {
            let needle = s.to_lowercase();
            let matching: Vec<(usize, &wgpu::Adapter)> = adapters
                .iter()
                .enumerate()
                .filter(|(_, a)| a.get_info().name.to_lowercase().contains(&needle))
                .collect();
            // A usable match first (the same GPU may be listed by a backend that cannot compute).
            let (i, a) =
                matching.iter().find(|(_, a)| unusable(a).is_none()).or(matching.first()).ok_or_else(
                    || anyhow!("no adapter's name contains {s:?}; the adapters are:\n{}", names()),
                )?;
            (*i, (*a).clone(), format!("its name contains {s:?}"))
        }
    };
    if let Some(problem) = unusable(&adapter) {
        bail!("adapter {index} ({}) cannot run shakeshake's kernels: {problem}", adapter.get_info().name);
    }
    Ok((adapter, format!("adapter {index}, chosen because {why}")))
}

/// The fewest invocations a subgroup of the adapter can have. wgpu reports 4..64 for every
/// Metal device (wgpu-hal's metal/mod.rs), the range of all the GPUs Metal has run on; Apple's
/// own GPUs (A-series, M-series) execute SIMD-groups of 32 threads, so there the subgroup
/// kernels are offered too. Like every variant they are checked against the CPU reference on
/// the device before one is chosen, so a device that computes them wrongly never uses them.
fn smallest_subgroup(info: &wgpu::AdapterInfo) -> u32 {
    match info.backend {
        wgpu::Backend::Metal if info.name.starts_with("Apple") => 32,
        _ => info.subgroup_min_size,
    }
}

/// The usable adapters other than `info`'s, one "  index: description" line each: what a
/// user whose adapter fails can try instead.
pub fn other_usable_adapters(info: &wgpu::AdapterInfo) -> Vec<String> {
    let others = list_adapters().into_iter().enumerate().filter(|(_, a)| {
        let other = a.get_info();
        unusable(a).is_none() && (other.name != info.name || other.backend != info.backend)
    });
    others.map(|(i, a)| format!("  {i}: {}", describe_info(&a.get_info()))).collect()
}

/// Why `adapter` cannot run shakeshake's kernels at all, if it cannot: no compute shaders
/// (OpenGL ES 3.0, WebGL 2), or limits below what the kernels ask for.
pub fn unusable(adapter: &wgpu::Adapter) -> Option<String> {
    if !adapter.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS) {
        return Some("it cannot run compute shaders (an OpenGL ES 3.0 or WebGL 2 device)".into());
    }
    let short = super::shaders::most_needed().shortfalls(&adapter.limits());
    let problems: Vec<String> = short.iter().map(|s| format!("its {s}")).collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Milliseconds a dispatch on a GPU is kept under. An OS resets a GPU whose work runs too
/// long (Windows' TDR after 2 s; macOS stops long command buffers), and the estimate that
/// splits a pass extrapolates from 16 images, so the budget stays an order of magnitude
/// below the limit. A piece this long still amortises its launch many times over.
pub const DISPATCH_BUDGET_MS: f64 = 200.0;

/// The device's per-dispatch budget: `DISPATCH_BUDGET_MS` on a GPU; none on a CPU adapter,
/// whose work runs on the CPU's own threads where no GPU watchdog reaches it. Test hook:
/// `SHAKESHAKE_DISPATCH_BUDGET_MS=<ms>` sets it on any adapter.
fn dispatch_budget(info: &wgpu::AdapterInfo) -> Option<f64> {
    if let Some(ms) = std::env::var("SHAKESHAKE_DISPATCH_BUDGET_MS").ok().and_then(|ms| ms.parse().ok()) {
        return Some(ms);
    }
    (info.device_type != wgpu::DeviceType::Cpu).then_some(DISPATCH_BUDGET_MS)
}

impl Gpu {
    /// Open the adapter the user chose, with its real limits and the optional features it
    /// offers (or WebGPU's defaults, as `SHAKESHAKE_LIMITS` says).
    pub fn open(choice: &AdapterChoice) -> Result<Gpu> {
        let (adapter, reason) = choose_adapter(choice)?;
        Self::open_adapter(adapter, reason, LimitsMode::from_env()?)
    }

    pub fn open_adapter(adapter: wgpu::Adapter, reason: String, mode: LimitsMode) -> Result<Gpu> {
        // wgpu's defaults are far below what real devices offer (128 MiB storage bindings on
        // lavapipe, more on GPUs); a batch of 128 at 32x32 needs the real numbers.
        let limits = match mode {
            LimitsMode::Adapter | LimitsMode::Lowered => adapter.limits(),
            LimitsMode::WebGpuDefault => wgpu::Limits::default(),
        };
        Self::open_with(adapter, reason, mode, limits)
    }

    /// The adapter with its optional features but `limits` (below its own): how the tests
    /// make a small device out of a large one.
    pub fn open_with_limits(adapter: wgpu::Adapter, reason: String, limits: wgpu::Limits) -> Result<Gpu> {
        Self::open_with(adapter, reason, LimitsMode::Lowered, limits)
    }

    fn open_with(
        adapter: wgpu::Adapter,
        reason: String,
        mode: LimitsMode,
        limits: wgpu::Limits,
    ) -> Result<Gpu> {
        let info = adapter.get_info();
        let offered = adapter.features();
        let wanted = match mode {
            LimitsMode::Adapter | LimitsMode::Lowered => {
                vec![
                    wgpu::Features::TIMESTAMP_QUERY,
                    wgpu::Features::SUBGROUP,
                    wgpu::Features::PIPELINE_CACHE,
                    wgpu::Features::SHADER_F16,
                ]
            }
            LimitsMode::WebGpuDefault => vec![],
        };
        let required_features = wanted
            .into_iter()
            .filter(|f| offered.contains(*f))
            .fold(wgpu::Features::empty(), |acc, f| acc | f);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("shakeshake"),
            required_features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .with_context(|| format!("opening a device on adapter {:?}", info.name))?;
        let allocated_at_oom: Arc<Mutex<Option<u64>>> = Default::default();
        let failure = watch_for_failure(&device, allocated_at_oom.clone());
        let grid_max_x = GRID_MAX_X.min(limits.max_compute_workgroups_per_dimension);
        let granted = device.features();
        // Subgroup kernels broadcast across 8 lanes; a device whose subgroups can be smaller
        // cannot run them.
        let subgroups = granted.contains(wgpu::Features::SUBGROUP) && smallest_subgroup(&info) >= 8;
        let features = GrantedFeatures {
            timestamps: granted.contains(wgpu::Features::TIMESTAMP_QUERY),
            subgroups,
            f16: granted.contains(wgpu::Features::SHADER_F16),
        };
        let dispatch_budget_ms = dispatch_budget(&info);
        let pipelines_on_disk =
            super::pipeline_cache::DiskPipelineCache::open(&device, &info, failure.clone()).map(Arc::new);
        Ok(Gpu {
            adapter,
            device,
            queue,
            info,
            limits,
            features,
            limits_mode: mode,
            reason,
            grid_max_x,
            dispatch_budget_ms,
            kernels: Default::default(),
            pipelines_on_disk,
            failure,
            allocated_at_oom,
            wait_limit: Default::default(),
        })
    }

    /// The precision `choice` gives on this device, and why; f16 on a device without f16 in
    /// shaders is an error that says what to do.
    pub fn precision(&self, choice: PrecisionChoice) -> Result<(Precision, &'static str)> {
        let cpu = self.info.device_type == wgpu::DeviceType::Cpu;
        Ok(match choice {
            PrecisionChoice::F32 => (Precision::F32, "asked for (--precision f32)"),
            PrecisionChoice::F16 if self.features.f16 => (Precision::F16, "asked for (--precision f16)"),
            PrecisionChoice::F16 => bail!(
                "{} has no f16 in shaders (wgpu's SHADER_F16), so it cannot store activations in f16: use \
                 --precision f32, or auto (f16 where a GPU offers it); docs/kernels.md lists which backends \
                 offer it",
                self.describe()
            ),
            PrecisionChoice::Auto if !self.features.f16 => {
                (Precision::F32, "auto: no f16 in this adapter's shaders")
            }
            PrecisionChoice::Auto if cpu => (
                Precision::F32,
                "auto: f32 on a CPU adapter, whose f16 converts on every load and saves no bandwidth",
            ),
            PrecisionChoice::Auto => (Precision::F16, "auto: this GPU has f16 in shaders"),
        })
    }

    /// A one-line description: name, backend, device type and driver (and the limits mode
    /// when it is not the adapter's own, and a lowered grid width).
    pub fn describe(&self) -> String {
        let mut text = describe_info(&self.info);
        match self.limits_mode {
            LimitsMode::Adapter => {}
            LimitsMode::WebGpuDefault => text += " with WebGPU's default limits",
            LimitsMode::Lowered => text += " with lowered limits",
        }
        if self.grid_max_x < GRID_MAX_X {
            text += &format!(", grids spread over y past {} workgroups", self.grid_max_x);
        }
        text
    }

    /// The same device, whose 1-D grids spread over y past `workgroups` (tests use it to
    /// spread small grids, as millions of invocations would be).
    pub fn with_grid_max_x(&self, workgroups: u32) -> Gpu {
        Gpu { grid_max_x: workgroups, ..self.clone() }
    }

    /// A second device on the same adapter with the same limits and features: its own
    /// queue, so work on it runs beside this one's (see `tuning::conv2d::compile_ahead`).
    pub fn another_device(&self) -> Result<Gpu> {
        let other = Self::open_with(
            self.adapter.clone(),
            self.reason.clone(),
            self.limits_mode,
            self.limits.clone(),
        )?;
        // Its pipelines are not written to disk: two devices writing one file would each
        // replace the other's.
        Ok(Gpu {
            grid_max_x: self.grid_max_x,
            dispatch_budget_ms: self.dispatch_budget_ms,
            pipelines_on_disk: None,
            ..other
        })
    }

    /// A second device to compile kernels on beside this one, where that pays: a CPU
    /// adapter (lavapipe, llvmpipe) compiles a pipeline when it first runs it, on its
    /// device's one queue thread, so work run on another device compiles on another core,
    /// and the driver's shader cache hands the result to this device. None on a GPU (its
    /// driver compiles when a pipeline is created), on GL (measured with llvmpipe: a second
    /// device's work ran one at a time with this one's, user time equal to wall time, so it
    /// only added work), with one core, or where no second device opens.
    pub fn compile_helper(&self) -> Option<Gpu> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let compiles_when_run = self.info.device_type == wgpu::DeviceType::Cpu;
        if !compiles_when_run || self.info.backend == wgpu::Backend::Gl || cores < 2 {
            return None;
        }
        self.another_device().ok()
    }

    /// The same device with another per-dispatch budget (tests lower it to split passes; a
    /// step whose pipelines are only created runs nothing, so has nothing to budget).
    pub fn with_dispatch_budget_ms(&self, budget: Option<f64>) -> Gpu {
        Gpu { dispatch_budget_ms: budget, ..self.clone() }
    }

    /// From now on, print each pipeline's label on stdout before creating it.
    pub fn announce_new_kernels(&self) {
        self.kernels.lock().expect("kernel cache poisoned").announce = true;
    }

    /// Pipelines created on this device so far, and how many of them failed to compile.
    pub fn kernels_made(&self) -> (usize, usize) {
        self.kernels.lock().expect("kernel cache poisoned").counts()
    }

    /// Ok while the device works; once it is lost or out of memory, why.
    pub fn check_alive(&self) -> Result<(), DeviceLost> {
        match self.failure.lock().expect("failure flag poisoned").as_ref() {
            None => Ok(()),
            Some(why) => Err(DeviceLost(why.clone())),
        }
    }

    /// Record that the device can no longer be used (the first reason is kept).
    /// The device ran out of memory with `allocated` bytes in use.
    pub(crate) fn fail_out_of_memory(&self, allocated: Option<u64>) {
        *self.allocated_at_oom.lock().expect("not poisoned") = allocated;
        self.fail(OUT_OF_MEMORY.into());
    }

    /// Bytes wgpu had allocated when the device ran out of memory, where the backend tells.
    pub fn allocated_at_out_of_memory(&self) -> Option<u64> {
        *self.allocated_at_oom.lock().expect("not poisoned")
    }

    pub(crate) fn fail(&self, why: String) {
        self.failure.lock().expect("failure flag poisoned").get_or_insert(why);
    }

    /// Block until everything submitted so far has finished.
    pub fn try_wait(&self) -> Result<(), DeviceLost> {
        self.try_wait_for(None)
    }

    /// Block until `submission` (or everything, with none) has finished; past the wait limit
    /// the device counts as hung: it is failed, and the wait an error.
    pub fn try_wait_for(&self, submission: Option<wgpu::SubmissionIndex>) -> Result<(), DeviceLost> {
        let limit = self.wait_limit.lock().expect("wait limit poisoned").clone();
        let timeout = limit.as_ref().map(|l| l.limit);
        match self.device.poll(wgpu::PollType::Wait { submission_index: submission, timeout }) {
            Ok(_) => {}
            Err(wgpu::PollError::Timeout) => {
                let l = limit.expect("only a wait with a limit times out");
                self.fail(format!("it had not finished its work after {:.1?}, {}", l.limit, l.why));
            }
            Err(e) => self.fail(format!("waiting for it failed: {e}")),
        }
        self.check_alive()
    }

    /// Every later wait gives up after `limit` (see `try_wait_for`).
    pub fn set_wait_limit(&self, limit: Option<WaitLimit>) {
        *self.wait_limit.lock().expect("wait limit poisoned") = limit;
    }

    /// `try_wait`, for callers that cannot go on without the device.
    pub fn wait(&self) {
        self.try_wait().unwrap_or_else(|e| panic!("{e}"));
    }

    /// A key that changes whenever the adapter or its driver does (for caches of measurements).
    pub fn adapter_key(&self) -> String {
        adapter_key(&self.info, self.limits_mode, os_build)
    }
}

/// `Gpu::adapter_key`, with the OS build from `os_build` (asked only where it is needed).
fn adapter_key(info: &wgpu::AdapterInfo, mode: LimitsMode, os_build: fn() -> String) -> String {
    // A device opened with fewer features chooses among fewer variants: its own key. Metal
    // reports no driver version (its driver comes with macOS), so there the OS build stands
    // for it; elsewhere the driver's own version does, and an OS update that leaves the
    // driver as it was keeps the measurements.
    let mut driver = format!("{}-{}", info.driver, info.driver_info);
    if info.driver.is_empty() && info.driver_info.is_empty() {
        driver = format!("os {}", os_build());
    }
    let raw = format!("{}-{:?}-{driver}-{mode:?}", info.name, info.backend);
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect()
}

/// The operating system's build ("23E224" on macOS, the kernel release on Linux, the version
/// line of `ver` on Windows), or "unknown".
fn os_build() -> String {
    let run = |program: &str, args: &[&str]| {
        let out = std::process::Command::new(program).args(args).output().ok()?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let build = match std::env::consts::OS {
        "macos" | "ios" => run("sw_vers", &["-buildVersion"]),
        "windows" => run("cmd", &["/C", "ver"]),
        _ => std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|r| r.trim().to_string()),
    };
    build.filter(|b| !b.is_empty()).unwrap_or_else(|| "unknown".into())
}

/// The flag a device's loss, or an error that leaves it unusable, sets. A validation error
/// is a bug in this program, not the device's: it panics, as wgpu's default handler does.
fn watch_for_failure(
    device: &wgpu::Device,
    allocated_at_oom: Arc<Mutex<Option<u64>>>,
) -> Arc<Mutex<Option<String>>> {
    let failure: Arc<Mutex<Option<String>>> = Default::default();
    let on_lost = failure.clone();
    device.set_device_lost_callback(move |reason, message| {
        let why = if message.is_empty() { format!("{reason:?}") } else { format!("{reason:?}: {message}") };
        on_lost.lock().expect("failure flag poisoned").get_or_insert(why);
    });
    let on_error = failure.clone();
    // The handler runs after wgpu has returned from the failed call, so the allocator can
    // be asked what it holds.
    let allocator = device.clone();
    device.on_uncaptured_error(Arc::new(move |error| {
        if matches!(error, wgpu::Error::OutOfMemory { .. }) {
            let used = allocator.generate_allocator_report().map(|r| r.total_allocated_bytes);
            allocated_at_oom.lock().expect("not poisoned").get_or_insert_with(|| used.unwrap_or(0));
        }
        let mut failure = on_error.lock().expect("failure flag poisoned");
        if failure.is_none() && matches!(error, wgpu::Error::Validation { .. }) {
            drop(failure);
            panic!("wgpu validation error: {error}");
        }
        failure.get_or_insert_with(|| match error {
            wgpu::Error::OutOfMemory { .. } => OUT_OF_MEMORY.to_string(),
            other => other.to_string(),
        });
    }));
    failure
}

/// What `DeviceLost` says when the device ran out of memory.
pub(super) const OUT_OF_MEMORY: &str = "out of memory";

impl DeviceLost {
    pub fn is_out_of_memory(&self) -> bool {
        self.0 == OUT_OF_MEMORY
    }
}

pub fn describe_info(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} ({:?}, {:?}, driver {} {})",
        info.name, info.backend, info.device_type, info.driver, info.driver_info
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, backend: wgpu::Backend, driver: &str) -> wgpu::AdapterInfo {
        wgpu::AdapterInfo {
            name: name.into(),
            vendor: 0,
            device: 0,
            device_type: wgpu::DeviceType::IntegratedGpu,
            device_pci_bus_id: String::new(),
            driver: driver.into(),
            driver_info: String::new(),
            backend,
            subgroup_min_size: 4,
            subgroup_max_size: 64,
            transient_saves_memory: None,
            limit_bucket: None,
        }
    }

    /// Metal names no driver version, so the OS build (which brings its driver) keys its
    /// measurements; a driver that names its version is keyed by it alone.
    #[test]
    fn the_os_build_keys_the_cache_only_where_the_driver_has_no_version() {
        let metal = info("Apple M2", wgpu::Backend::Metal, "");
        let key = |build: fn() -> String| adapter_key(&metal, LimitsMode::Adapter, build);
        assert_ne!(key(|| "23E224".into()), key(|| "24A335".into()));
        let vulkan = info("Radeon 780M", wgpu::Backend::Vulkan, "radv Mesa 25.0.7");
        let unasked = || panic!("the OS build is not needed where the driver names its version");
        assert!(adapter_key(&vulkan, LimitsMode::Adapter, unasked).contains("Mesa_25.0.7"));
    }

    #[test]
    fn apple_gpus_on_metal_have_subgroups_of_32() {
        assert_eq!(smallest_subgroup(&info("Apple M1", wgpu::Backend::Metal, "")), 32);
        assert_eq!(smallest_subgroup(&info("AMD Radeon Pro 5500M", wgpu::Backend::Metal, "")), 4);
        assert_eq!(smallest_subgroup(&info("Apple M1", wgpu::Backend::Vulkan, "")), 4);
    }
}
