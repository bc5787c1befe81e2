//! Pipelines (made once per module, entry point and constants) and dispatches (a pipeline
//! with its bind group and grid, made once and recorded into passes every step).

use super::Gpu;
use super::interface::Binding;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Shader modules and pipelines already created on a device.
#[derive(Default)]
pub struct KernelCache {
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    pipelines: HashMap<String, wgpu::ComputePipeline>,
}

pub type SharedKernelCache = Arc<Mutex<KernelCache>>;

/// A compute pipeline of one entry point.
#[derive(Clone)]
pub struct Kernel {
    pipeline: wgpu::ComputePipeline,
    label: String,
}

impl Kernel {
    /// `constants` set the module's `override` values (kernel size, stride, workgroup size).
    pub fn new(gpu: &Gpu, module: &'static str, entry: &str, constants: &[(&str, f64)]) -> Kernel {
        let label = format!("{module}::{entry}{constants:?}");
        let mut cache = gpu.kernels.lock().expect("kernel cache poisoned");
        if let Some(pipeline) = cache.pipelines.get(&label) {
            return Kernel { pipeline: pipeline.clone(), label };
        }
        let def = super::shaders::module_def(module);
        assert!(
            !def.needs_subgroups || gpu.features.subgroups,
            "{module} needs subgroups, which this device lacks"
        );
        let shader = cache
            .modules
            .entry(def.name)
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(def.name),
                    source: wgpu::ShaderSource::Wgsl(super::shaders::source(def.name).into()),
                };
                if def.checks_own_bounds {
                    // SAFETY: these modules clamp or mask every index themselves (the tests
                    // cover their edge shapes), so wgpu's per-access checks, which made the
                    // convolutions 3.7x slower on llvmpipe, add nothing. Drivers with robust
                    // buffer access (Vulkan) still enforce bounds.
                    unsafe {
                        gpu.device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
                    }
                } else {
                    gpu.device.create_shader_module(desc)
                }
            })
            .clone();
        let pipeline = gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: None,
            module: &shader,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                // Every kernel writes workgroup memory before reading it.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        cache.pipelines.insert(label.clone(), pipeline.clone());
        Kernel { pipeline, label }
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
        Dispatch { pipeline: self.pipeline.clone(), bind_group, workgroups, label: self.label.clone(), bytes }
    }
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
        Slice { buffer: self.buffer, offset: self.offset + first * 4, size: count * 4 }
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

impl Gpu {
    /// Workgroups for `count` invocations of `GRID_WG_SIZE` each; past `grid_max_x`
    /// workgroups the grid spreads over y, so kernels index with `flat_index` (see
    /// shaders/grid.wgsl).
    pub fn grid_1d(&self, count: usize) -> [u32; 3] {
        let groups = count.div_ceil(GRID_WG_SIZE);
        let max_x = self.grid_max_x as usize;
        if groups <= max_x { [groups as u32, 1, 1] } else { [max_x as u32, groups.div_ceil(max_x) as u32, 1] }
    }
}
