//! Reading a small buffer back without waiting for the GPU: a step's submission also copies
//! the buffer to a staging buffer, which is mapped in the background and picked up by a
//! later `poll`. The training loop shows its running loss this way, with no round trip.

use super::{DeviceLost, Gpu};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct ReadbackProbe {
    staging: wgpu::Buffer,
    ready: Arc<AtomicBool>,
    /// A copy was recorded and not yet mapped.
    copied: bool,
    /// A mapping is in flight.
    pending: bool,
    last: Vec<f32>,
}

impl ReadbackProbe {
    /// A probe of the first `floats` floats of a buffer.
    pub fn new(gpu: &Gpu, floats: usize) -> Self {
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback probe"),
            size: (floats * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        ReadbackProbe {
            staging,
            ready: Arc::new(AtomicBool::new(false)),
            copied: false,
            pending: false,
            last: vec![0.0; floats],
        }
    }

    /// Record a copy of `source` into `encoder` if no read is in flight; `after_submit`
    /// then starts the read. So the step that carries the copy is the only submission.
    pub fn record_copy(&mut self, encoder: &mut wgpu::CommandEncoder, source: &wgpu::Buffer) {
        if !self.pending {
            encoder.copy_buffer_to_buffer(source, 0, &self.staging, 0, self.staging.size());
            self.copied = true;
        }
    }

    pub fn after_submit(&mut self) {
        if !self.copied {
            return;
        }
        let ready = self.ready.clone();
        // A mapping that fails (the device was lost) never becomes ready; the training loop
        // learns of the loss from `Gpu::check_alive`.
        self.staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            if r.is_ok() {
                ready.store(true, Ordering::Release);
            }
        });
        self.copied = false;
        self.pending = true;
    }

    /// The latest values that have arrived.
    pub fn poll(&mut self, gpu: &Gpu) -> &[f32] {
        let _ = gpu.device.poll(wgpu::PollType::Poll);
        if self.pending && self.ready.swap(false, Ordering::Acquire) {
            // A device destroyed since the copy was mapped (a lost GPU, or the test hook that
            // loses one) has no range to give: the last values stay, and the caller's next
            // `check_alive` reports the loss. A panic here would leave an MPI run's other
            // ranks waiting in their next sum.
            if let Ok(data) = self.staging.slice(..).get_mapped_range() {
                self.last.copy_from_slice(bytemuck::cast_slice(&data));
                drop(data);
                self.staging.unmap();
            }
            self.pending = false;
        }
        &self.last
    }

    /// Wait for everything and return `source`'s final values, unless the device is lost.
    pub fn finish(&mut self, gpu: &Gpu, source: &wgpu::Buffer) -> Result<&[f32], DeviceLost> {
        gpu.try_wait()?;
        self.poll(gpu);
        let v: Vec<f32> = gpu.try_read(source)?;
        let n = self.last.len();
        self.last.copy_from_slice(&v[..n]);
        Ok(&self.last)
    }
}
