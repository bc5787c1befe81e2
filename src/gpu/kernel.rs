//! Pipelines (made once per module, entry point and constants) and dispatches (a pipeline
//! with its bind group and grid, made once and recorded into passes every step).

use super::Gpu;
use super::interface::Binding;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A kernel the driver would not compile: a shader its compiler rejects (Metal's and FXC's
/// do reject valid WGSL: wgpu issues 4817, 5788), or a pipeline the device refuses (more
/// workgroup memory than it has). It fails that kernel, not the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// The pipeline's label: module, entry point and constants.
    pub kernel: String,
    /// The compiler's or wgpu's message.
    pub message: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the driver could not compile kernel {}: {}", self.kernel, self.message)
    }
}

impl std::error::Error for CompileError {}

/// Why GPU work could not be run: the device is gone, or one of its kernels did not compile.
#[derive(Clone, Debug)]
pub enum GpuError {
    Lost(super::DeviceLost),
    Compile(CompileError),
}

impl std::fmt::Display for GpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpuError::Lost(lost) => lost.fmt(f),
            GpuError::Compile(failed) => failed.fmt(f),
        }
    }
}

impl std::error::Error for GpuError {}

impl From<super::DeviceLost> for GpuError {
    fn from(lost: super::DeviceLost) -> Self {
        GpuError::Lost(lost)
    }
}

impl From<CompileError> for GpuError {
    fn from(failed: CompileError) -> Self {
        GpuError::Compile(failed)
    }
}

/// Shader modules and pipelines created on a device, or why they could not be (so a failure
/// is reported for every kernel that needs it, but paid for once). Each is made once: a
/// thread that asks for one being made waits for it, and threads making different ones do
/// not wait for each other (a GPU driver compiles when a pipeline is created; see
/// `create_in_parallel`).
#[derive(Default)]
pub struct KernelCache {
    modules: HashMap<&'static str, Made<wgpu::ShaderModule>>,
    pipelines: HashMap<String, Made<wgpu::ComputePipeline>>,
    /// Print each pipeline's label on stdout before creating it (`shakeshake kernels`, so
    /// that what a driver layer prints about a pipeline follows its name).
    pub(super) announce: bool,
}

/// Something created once, by the first thread that asks for it.
type Made<T> = Arc<OnceLock<Result<T, String>>>;

pub type SharedKernelCache = Arc<Mutex<KernelCache>>;

impl KernelCache {
    /// Pipelines asked for so far, and how many of them failed.
    pub fn counts(&self) -> (usize, usize) {
        let failed = self.pipelines.values().filter(|p| matches!(p.get(), Some(Err(_)))).count();
        (self.pipelines.len(), failed)
    }
}

/// Runs `create` on every item on as many threads as the machine has cores. A GPU driver
/// compiles a pipeline when it is created, on the creating thread, so pipelines created this
/// way compile side by side (measured with AMD's compiler in docs/kernels.md). Kept by the
/// device's `KernelCache`, they cost nothing when they are asked for again.
pub fn create_in_parallel<T: Sync>(items: &[T], create: impl Fn(&T) + Sync) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    create(item);
                }
            });
        }
    });
}

/// A compute pipeline of one entry point.
#[derive(Clone)]
pub struct Kernel {
    pipeline: wgpu::ComputePipeline,
    label: String,
}

impl Kernel {
    /// `constants` set the module's `override` values (kernel size, stride, workgroup size).
    pub fn new(
        gpu: &Gpu,
        module: &'static str,
        entry: &str,
        constants: &[(&str, f64)],
    ) -> Result<Kernel, CompileError> {
        let label = format!("{module}::{entry}{constants:?}");
        let def = super::shaders::module_def(module);
        assert!(
            !def.needs_subgroups || gpu.features.subgroups,
            "{module} needs subgroups, which this device lacks"
        );
        assert!(
            def.precision() == crate::shapes::Precision::F32 || gpu.features.f16,
            "{module} needs f16 in shaders, which this device lacks"
        );
        // The cache is locked only to find or add the slots; creating runs outside it.
        let (shader, pipeline, announce) = {
            let mut cache = gpu.kernels.lock().expect("kernel cache poisoned");
            let shader = cache.modules.entry(def.name).or_default().clone();
            let pipeline = cache.pipelines.entry(label.clone()).or_default().clone();
            (shader, pipeline, cache.announce)
        };
        let made = pipeline
            .get_or_init(|| {
                if announce {
                    println!("pipeline {label}");
                }
                let shader = shader.get_or_init(|| create_module(gpu, def)).clone();
                shader.and_then(|shader| create_pipeline(gpu, &label, &shader, entry, constants))
            })
            .clone();
        match made {
            Ok(pipeline) => Ok(Kernel { pipeline, label }),
            Err(message) => Err(CompileError { kernel: label, message }),
        }
    }

    /// Bind buffers to the module's bindings and fix the grid: a dispatch ready to record.
    pub fn dispatch(&self, gpu: &Gpu, bindings: &[(Binding, Slice<'_>)], workgroups: [u32; 3]) -> Dispatch {
        let layout = self.pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry> = bindings
            .iter()
            .map(|(binding, slice)| wgpu::BindGroupEntry {
                binding: binding.number,
                resource: slice.resource(),
            })
            .collect();
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&self.label),
            layout: &layout,
            entries: &entries,
        });
        for (axis, n) in workgroups.iter().enumerate() {
            assert!(
                *n <= gpu.limits.max_compute_workgroups_per_dimension,
                "{}: {n} workgroups on axis {axis} is over the device's limit",
                self.label
            );
        }
        let bytes = bindings.iter().map(|(_, slice)| slice.size).sum();
        let label = self.label.clone();
        Dispatch { pipeline: self.pipeline.clone(), bind_group, workgroups, label, bytes, estimated_ms: 0.0 }
    }
}

/// Runs `create` with every validation and internal error it raises caught rather than
/// reported to the device's handler (which treats them as a bug or a lost device): how a
/// driver's compiler says no. Error scopes are per thread, so threads do not see each
/// other's errors.
fn caught<T>(gpu: &Gpu, create: impl FnOnce() -> T) -> Result<T, String> {
    let internal = gpu.device.push_error_scope(wgpu::ErrorFilter::Internal);
    let validation = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let made = create();
    let errors = [pollster::block_on(validation.pop()), pollster::block_on(internal.pop())];
    match errors.into_iter().flatten().next() {
        None => Ok(made),
        Some(error) => Err(compact(&error.to_string())),
    }
}

/// A compiler's message on one line, without wgpu's framing of it (the error's kind, "Caused
/// by:", and the call and label, which `CompileError` names already).
fn compact(message: &str) -> String {
    let framing = |l: &&str| {
        l.is_empty()
            || ["Validation Error", "Internal error", "Caused by:"].contains(l)
            || l.starts_with("In Device::create_")
    };
    message.lines().map(str::trim).filter(|l| !framing(l)).collect::<Vec<_>>().join(" / ")
}

fn create_module(gpu: &Gpu, def: &super::shaders::ModuleDef) -> Result<wgpu::ShaderModule, String> {
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(def.name),
        source: wgpu::ShaderSource::Wgsl(super::shaders::source(def.name).into()),
    };
    caught(gpu, || {
        if def.checks_own_bounds {
            // SAFETY: these modules clamp or mask every index themselves (the tests cover
            // their edge shapes), so wgpu's per-access checks, which made the convolutions
            // 3.7x slower on llvmpipe, add nothing. Drivers with robust buffer access
            // (Vulkan) still enforce bounds.
            unsafe { gpu.device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
        } else {
            gpu.device.create_shader_module(desc)
        }
    })
}

fn create_pipeline(
    gpu: &Gpu,
    label: &str,
    shader: &wgpu::ShaderModule,
    entry: &str,
    constants: &[(&str, f64)],
) -> Result<wgpu::ComputePipeline, String> {
    let on_disk = gpu.pipelines_on_disk.as_deref();
    let made = caught(gpu, || {
        gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module: shader,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                // Every kernel writes workgroup memory before reading it.
                zero_initialize_workgroup_memory: false,
            },
            cache: on_disk.map(|c| &c.cache),
        })
    });
    if let (Ok(_), Some(on_disk)) = (&made, on_disk) {
        on_disk.added_one();
    }
    made
}

/// A recorded-once unit of GPU work.
pub struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
    pub label: String,
    /// Bytes of every range it binds: what it must read or write at least once, the
    /// compulsory memory traffic of the dispatch (a range read many times counts once).
    pub bytes: u64,
    /// How long it is expected to run, in milliseconds, where that was measured (0: not
    /// measured, and small): what a step's command buffers are cut by. A convolution pass
    /// (or piece of one) of several dispatches gives its whole time to the first.
    pub estimated_ms: f64,
}

impl Dispatch {
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        if self.workgroups.contains(&0) {
            return;
        }
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
}

/// A byte range of a buffer, bound as one storage or uniform binding.
#[derive(Clone, Copy)]
pub struct Slice<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
}

impl<'a> Slice<'a> {
    pub fn resource(&self) -> wgpu::BindingResource<'a> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer,
            offset: self.offset,
            size: std::num::NonZeroU64::new(self.size),
        })
    }

    /// A sub-range, in f32 elements.
    pub fn floats(&self, first: u64, count: u64) -> Slice<'a> {
        self.bytes(first * 4, count * 4)
    }

    /// `count` bytes from byte `first` of this slice.
    pub fn bytes(&self, first: u64, count: u64) -> Slice<'a> {
        Slice { buffer: self.buffer, offset: self.offset + first, size: count }
    }
}

impl<'a> From<&'a wgpu::Buffer> for Slice<'a> {
    fn from(buffer: &'a wgpu::Buffer) -> Self {
        Slice { buffer, offset: 0, size: buffer.size() }
    }
}

/// Invocations a workgroup of every kernel on a `grid_1d` grid: shaders/grid.wgsl's
/// `WG_SIZE`, which `flat_index` relies on (a test holds every such kernel to it).
pub const GRID_WG_SIZE: usize = 256;

/// Workgroups for `count` invocations of `GRID_WG_SIZE` each; past `max_x` workgroups the
/// grid spreads over y, so kernels index with `flat_index` (see shaders/grid.wgsl).
pub fn grid_1d(count: usize, max_x: u32) -> [u32; 3] {
    let groups = count.div_ceil(GRID_WG_SIZE);
    let max_x = max_x as usize;
    if groups <= max_x { [groups as u32, 1, 1] } else { [max_x as u32, groups.div_ceil(max_x) as u32, 1] }
}

impl Gpu {
    /// `grid_1d` with this device's `grid_max_x`.
    pub fn grid_1d(&self, count: usize) -> [u32; 3] {
        grid_1d(count, self.grid_max_x)
    }
}
