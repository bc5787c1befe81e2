//! Data-parallel training on several devices in one process (`train --adapter 0,1`).
//!
//! Every device holds the whole model and runs the recorded step on its share of each batch
//! (`Shares`: consecutive images, device 0 first). After the backward pass the gradients
//! are read back, summed on the host in device order (so a run repeats bit for bit), and
//! the sum is written to every device, which then applies the same SGD update: the weights
//! stay identical on every device, which `check_identical` confirms at every checkpoint.
//!
//! Batch norm normalises each device's share on its own, as the authors' two GPUs did: one
//! device with `--bn-group` the size of a share computes the same step. The running
//! statistics are device 0's (as PyTorch DDP's `broadcast_buffers` keeps rank 0's): device
//! 0 evaluates and writes the checkpoints, and a resumed run gives them to every device.
//!
//! One device is the plain case: its step is submitted whole, with nothing read back.

use super::ranks::Ranks;
use super::session::{Graphs, Session};
use super::shares::Shares;
use crate::gpu::DeviceLost;
use crate::gpu::probe::ReadbackProbe;
use crate::ops::StepUniform;
use crate::ops::cross_entropy::{METRICS_LEN, STEP_COUNTER};
use crate::shapes::IMAGE_BYTES;
use std::ops::Range;

/// One device of a run: its session and its training graphs over its shares.
pub struct Replica {
    pub session: Session,
    pub graphs: Graphs,
    /// Where the device's gradients and metrics are copied to be read back (several
    /// devices only).
    gradients: wgpu::Buffer,
    metrics: wgpu::Buffer,
}

impl Replica {
    pub fn new(session: Session, graphs: Graphs) -> Replica {
        let bytes = session.params.grads.size();
        let gradients = session.gpu.staging("gradients read back", bytes);
        let metrics = session.gpu.staging("metrics read back", session.params.metrics.size());
        Replica { session, graphs, gradients, metrics }
    }
}

/// The devices of a run this process trains on, and the run's other processes (MPI).
pub struct Replicas {
    /// This process's devices, in the run's order.
    pub devices: Vec<Replica>,
    /// How a batch is split among all the run's devices.
    pub shares: Shares,
    /// The place of this process's first device among the run's: its rank, under MPI.
    pub first_device: usize,
    /// The run's other processes, under MPI: the gradients are summed across them too.
    pub ranks: Option<std::rc::Rc<dyn Ranks>>,
}

impl Replicas {
    /// The run's devices, all in this process.
    pub fn new(devices: Vec<Replica>, shares: Shares) -> Replicas {
        Replicas { devices, shares, first_device: 0, ranks: None }
    }

    /// This process's first device: it is watched, and in the leading process it evaluates
    /// and checkpoints.
    pub fn first(&self) -> &Session {
        &self.devices[0].session
    }

    /// Whether this process writes the run's files: it holds the run's device 0.
    pub fn leads(&self) -> bool {
        self.first_device == 0
    }

    /// `(stop, checkpoint)` as any process asks: every process stops, or checkpoints, after the
    /// same step.
    pub fn agree(&self, stop: bool, checkpoint: bool) -> (bool, bool) {
        let Some(ranks) = &self.ranks else { return (stop, checkpoint) };
        let mut asked = [stop as u8 as f32, checkpoint as u8 as f32];
        ranks.sum(&mut asked);
        (asked[0] > 0.0, asked[1] > 0.0)
    }

    /// Submit one training step of a whole batch (`labels.len()` images, `pixels` theirs):
    /// each device's share, the gradients summed, every device's update. `after` records
    /// more commands into device 0's last submission, whose index is returned. With several
    /// devices this waits for their gradients; with one it returns at once. An error names
    /// the device that failed.
    pub fn submit(
        &self,
        pixels: &[u8],
        labels: &[u32],
        step: StepUniform,
        after: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> Result<wgpu::SubmissionIndex, DeviceLost> {
        let n = labels.len();
        if let ([only], None) = (&self.devices[..], &self.ranks) {
            let s = &only.session;
            return Ok(only.graphs.for_batch(n).submit_then(&s.gpu, &s.params, pixels, labels, step, after));
        }
        let shares = &self.shares.split(n)[self.first_device..];
        for (device, share) in self.devices.iter().zip(shares) {
            let (s, grads, metrics) =
                (&device.session, &device.session.params.grads, &device.session.params.metrics);
            let bytes = &pixels[share.start * IMAGE_BYTES..share.end * IMAGE_BYTES];
            let graph = device.graphs.for_batch(n);
            graph.submit_gradients(&s.gpu, &s.params, bytes, &labels[share.clone()], step, |encoder| {
                encoder.copy_buffer_to_buffer(grads, 0, &device.gradients, 0, grads.size());
                encoder.copy_buffer_to_buffer(metrics, 0, &device.metrics, 0, metrics.size());
            });
        }
        let (gradients, metrics) = self.summed(shares, n)?;
        // The metrics move to the run's device 0 every step, added in device order: so a run
        // resumed with them there (`set_metrics`) sums on exactly as the uninterrupted run.
        for (d, device) in self.devices.iter().enumerate() {
            let (s, values) =
                (&device.session, if d == 0 && self.leads() { metrics } else { [0.0; METRICS_LEN] });
            s.gpu.queue.write_buffer(&s.params.metrics, 0, bytemuck::cast_slice(&values));
            s.gpu.queue.write_buffer(&s.params.grads, 0, bytemuck::cast_slice(&gradients));
        }
        let mut after = Some(after);
        let mut first = None;
        for device in &self.devices {
            let index = device.graphs.for_batch(n).submit_update(&device.session.gpu, step, |encoder| {
                if let Some(after) = after.take() {
                    after(encoder);
                }
            });
            first.get_or_insert(index);
        }
        Ok(first.expect("a run has a device"))
    }

    /// The step's gradients and metrics, once every device of the run has computed its share
    /// (of a batch of `n`): this process's devices' added in device order, then every
    /// process's (MPI). The metrics' batch mean loss is weighted by the shares.
    fn summed(
        &self,
        shares: &[Range<usize>],
        n: usize,
    ) -> Result<(Vec<f32>, [f32; METRICS_LEN]), DeviceLost> {
        let mut sum: Vec<f32> = vec![];
        let mut metrics = [0.0f32; METRICS_LEN];
        for ((d, device), share) in self.devices.iter().enumerate().zip(shares) {
            let gpu = &device.session.gpu;
            let gradients: Vec<f32> = gpu.try_read_staged(&device.gradients).map_err(self.named(d))?;
            if d == 0 {
                sum = gradients;
            } else {
                sum.iter_mut().zip(&gradients).for_each(|(s, g)| *s += g);
            }
            let m: Vec<f32> = gpu.try_read_staged(&device.metrics).map_err(self.named(d))?;
            for i in 0..3 {
                metrics[i] += m[i];
            }
            metrics[3] += m[3] * share.len() as f32 / n as f32;
        }
        if let Some(ranks) = &self.ranks {
            // One all-reduce a step: the metrics ride after the gradients.
            sum.extend(metrics);
            ranks.sum(&mut sum);
            metrics.copy_from_slice(&sum.split_off(sum.len() - METRICS_LEN));
        }
        Ok((sum, metrics))
    }

    /// Set the metrics accumulators (on the run's device 0; the others start from zero) and
    /// every device's count of the steps that ran.
    pub fn set_metrics(&self, values: &[f32; METRICS_LEN], steps: usize) {
        for (d, device) in self.devices.iter().enumerate() {
            let s = &device.session;
            let values = if d == 0 && self.leads() { values } else { &[0.0; METRICS_LEN] };
            s.params.set_metrics(&s.gpu, values, steps);
        }
    }

    /// The run's metrics once every step submitted has finished: device 0's (where every
    /// step leaves the sums of all, see `submit`), with the fewest steps any device ran to
    /// their end. Device 0's through `probe`.
    pub fn metrics(&self, probe: &mut ReadbackProbe) -> Result<Vec<f32>, DeviceLost> {
        let first = self.first();
        let mut total = probe.finish(&first.gpu, &first.params.metrics).map_err(self.named(0))?.to_vec();
        for (d, device) in self.devices.iter().enumerate().skip(1) {
            let s = &device.session;
            let m: Vec<f32> = s.gpu.try_read(&s.params.metrics).map_err(self.named(d))?;
            total[STEP_COUNTER] = total[STEP_COUNTER].min(m[STEP_COUNTER]);
        }
        Ok(total)
    }

    /// An error unless every device of the run (every process's, under MPI) holds the same
    /// weights as device 0, bit for bit, naming the first tensor that differs. Running
    /// statistics may differ (they are device 0's). Every process calls it at the same step.
    pub fn check_identical(&self) -> anyhow::Result<()> {
        if self.devices.len() == 1 && self.ranks.is_none() {
            return Ok(());
        }
        let specs = &self.first().params.specs;
        let mut all = vec![];
        for (d, device) in self.devices.iter().enumerate() {
            let s = &device.session;
            let params = s.params.download(&s.gpu).map_err(self.named(d))?;
            all.push(params.values.iter().map(|v| checksum(v)).collect::<Vec<u64>>());
        }
        if let Some(ranks) = &self.ranks {
            all = ranks.gather(&all[0]).chunks(specs.len()).map(<[u64]>::to_vec).collect();
        }
        for (d, sums) in all.iter().enumerate().skip(1) {
            let differs = |p: &usize| specs[*p].trainable() && sums[*p] != all[0][*p];
            if let Some(p) = (0..specs.len()).find(differs) {
                anyhow::bail!(
                    "the weights of device {d} differ from device 0's in {}: the devices no longer train the \
                     same network, which is a bug; please report it with the command you ran. The last \
                     checkpoint is kept as it was",
                    specs[p].prefix
                );
            }
        }
        Ok(())
    }

    /// The error of this process's device `d` lost, naming it when the run has several.
    fn named(&self, d: usize) -> impl Fn(DeviceLost) -> DeviceLost {
        let (device, several) = (self.first_device + d, self.shares.devices() > 1);
        move |e| if several { DeviceLost(format!("device {device}: {}", e.0)) } else { e }
    }

    /// Each device's name, device 0 first.
    pub fn describe(&self) -> Vec<String> {
        self.devices.iter().map(|d| d.session.gpu.describe()).collect()
    }
}

/// A tensor's values, bit for bit, as one number to compare across processes.
fn checksum(values: &[f32]) -> u64 {
    use std::hash::Hasher;
    // SipHash with fixed keys: the same in every process of the same program.
    let mut hasher = std::hash::DefaultHasher::new();
    values.iter().for_each(|v| hasher.write_u32(v.to_bits()));
    hasher.finish()
}
