//! Creating, filling and reading buffers.

use super::{DeviceLost, Dispatch, Gpu};
use crate::shapes::Precision;
use wgpu::util::DeviceExt;

const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

/// Where a storage binding may start, in floats: the device's offset alignment, and at
/// least a vec4's, so vec4 views of a binding stay aligned.
pub fn binding_alignment_floats(limits: &wgpu::Limits) -> usize {
    (limits.min_storage_buffer_offset_alignment as usize / 4).max(4)
}

/// The largest offset alignment WebGPU lets a device ask for (256 bytes), in floats: offsets
/// laid out without a device (a convolution's scratch) use it, so that any device takes them.
pub const ANY_BINDING_ALIGNMENT_FLOATS: usize = 64;

impl Gpu {
    /// A zeroed storage buffer of `floats` 4-byte elements.
    pub fn storage(&self, label: &str, floats: usize) -> wgpu::Buffer {
        let mut size = (floats.max(1) * 4) as u64;
        if let Some(allocated) = self.over_test_memory_limit(size) {
            // As wgpu does when the driver is out of memory: the device fails, the buffer is
            // of no use (nothing runs after).
            self.fail_out_of_memory(Some(allocated));
            size = 4;
        }
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: STORAGE,
            mapped_at_creation: false,
        })
    }

    /// Test hook: `SHAKESHAKE_DEVICE_MEMORY_MB=N` makes a storage buffer that would take the
    /// allocator past N MB fail as out of memory (where wgpu reports what it allocated):
    /// the bytes allocated then.
    fn over_test_memory_limit(&self, bytes: u64) -> Option<u64> {
        static LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        let limit =
            LIMIT.get_or_init(|| std::env::var("SHAKESHAKE_DEVICE_MEMORY_MB").ok()?.parse::<u64>().ok());
        let mb = (*limit)?;
        let used = self.device.generate_allocator_report()?.total_allocated_bytes;
        (used + bytes > mb * 1_000_000).then_some(used)
    }

    /// A zeroed buffer of `len` activations stored in `precision`.
    pub fn activations(&self, label: &str, len: usize, precision: Precision) -> wgpu::Buffer {
        self.storage(label, (len * precision.bytes()).div_ceil(4))
    }

    /// A buffer of activations holding `data`, rounded to `precision`.
    pub fn activations_from(&self, label: &str, data: &[f32], precision: Precision) -> wgpu::Buffer {
        match precision {
            Precision::F32 => self.storage_from(label, data),
            Precision::F16 => {
                let halves: Vec<half::f16> = data.iter().map(|v| half::f16::from_f32(*v)).collect();
                self.storage_from(label, &halves)
            }
        }
    }

    /// The first `len` activations of `buffer`, stored in `precision`, as f32; panics if the
    /// device is lost.
    pub fn read_activations(&self, buffer: &wgpu::Buffer, len: usize, precision: Precision) -> Vec<f32> {
        self.try_read_activations(buffer, len, precision).unwrap_or_else(|lost| panic!("{lost}"))
    }

    pub fn try_read_activations(
        &self,
        buffer: &wgpu::Buffer,
        len: usize,
        precision: Precision,
    ) -> Result<Vec<f32>, DeviceLost> {
        Ok(match precision {
            Precision::F32 => self.try_read::<f32>(buffer)?[..len].to_vec(),
            Precision::F16 => self.try_read::<half::f16>(buffer)?[..len].iter().map(|v| v.to_f32()).collect(),
        })
    }

    /// A storage buffer holding `data` (f32, u32, ...).
    pub fn storage_from<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let padded;
        let contents = if bytes.is_empty() {
            padded = [0u8; 4];
            &padded[..]
        } else {
            bytes
        };
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: STORAGE,
        })
    }

    /// A uniform buffer holding `value`; written again with `queue.write_buffer` if it changes.
    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(value),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
    }

    /// Copy a whole buffer back to the CPU (waits for the GPU); panics if the device is lost.
    pub fn read<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer) -> Vec<T> {
        self.try_read(buffer).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Copy a whole buffer back to the CPU (waits for the GPU), unless the device is lost.
    pub fn try_read<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer) -> Result<Vec<T>, DeviceLost> {
        self.check_alive()?;
        let staging = self.staging("read-back", buffer.size());
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
        self.queue.submit([encoder.finish()]);
        self.try_read_staged(&staging)
    }

    /// A buffer of `bytes` that copies land in to be read back (`try_read_staged`).
    pub fn staging(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// The contents of a `staging` buffer once the copies submitted into it are done (waits
    /// for the GPU), unless the device is lost. The buffer is unmapped again after.
    pub fn try_read_staged<T: bytemuck::Pod>(&self, staging: &wgpu::Buffer) -> Result<Vec<T>, DeviceLost> {
        let slice = staging.slice(..);
        let mapped = std::sync::Arc::new(std::sync::Mutex::new(None));
        let on_mapped = mapped.clone();
        slice.map_async(wgpu::MapMode::Read, move |r| *on_mapped.lock().expect("not poisoned") = Some(r));
        // The callback may run on another thread that polls the same device, a moment after
        // this thread's wait has seen the copy finish: wait until it has run.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let outcome = loop {
            self.try_wait()?;
            if let Some(outcome) = mapped.lock().expect("not poisoned").take() {
                break outcome;
            }
            if std::time::Instant::now() > deadline {
                self.fail("a buffer read back never arrived".into());
                self.check_alive()?;
            }
            std::thread::yield_now();
        };
        if let Err(e) = outcome {
            self.fail(format!("reading a buffer back failed: {e}"));
        }
        self.check_alive()?;
        let values = bytemuck::cast_slice(&slice.get_mapped_range().expect("mapped range")).to_vec();
        staging.unmap();
        Ok(values)
    }

    /// Record dispatches into one compute pass, submit, and wait.
    pub fn run(&self, dispatches: &[&Dispatch]) {
        self.try_run(dispatches).unwrap_or_else(|e| panic!("{e}"));
    }

    /// `run`, unless the device is lost.
    pub fn try_run(&self, dispatches: &[&Dispatch]) -> Result<(), DeviceLost> {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.record(&mut pass);
            }
        }
        self.queue.submit([encoder.finish()]);
        self.try_wait()
    }
}
