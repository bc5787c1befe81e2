//! Timing GPU work: timestamp queries where the device has them, wall clock otherwise.

use super::{DeviceLost, Dispatch, Gpu};
use std::time::Instant;

/// A wall-clock sample runs the work this many times in one submission, so the cost of
/// submitting and waiting is spread over several runs.
const WALL_CLOCK_REPEATS: usize = 4;

impl Gpu {
    /// Milliseconds of one run of `dispatches` (recorded in one pass): the fastest of `reps`
    /// samples after one warm-up (which also compiles the pipelines). The fastest, since
    /// other work on the machine only ever adds time.
    pub fn time_ms(&self, dispatches: &[&Dispatch], reps: usize) -> Result<f64, DeviceLost> {
        self.try_run(dispatches)?;
        let mut best = f64::INFINITY;
        for _ in 0..reps.max(1) {
            best = best.min(self.sample_ms(dispatches)?);
        }
        Ok(best)
    }

    /// Milliseconds of each group of dispatches, for choosing among them: each is warmed up,
    /// then `rounds` rounds run every group once in turn and keep each one's fastest.
    /// Interleaved, so a burst of other work on a busy machine slows all candidates alike
    /// instead of the one that happened to run then. After the first round, a group more than
    /// 4x slower than the fastest is out of the running and not run again.
    pub fn time_interleaved(&self, groups: &[Vec<&Dispatch>], rounds: usize) -> Result<Vec<f64>, DeviceLost> {
        for group in groups {
            self.try_run(group)?;
        }
        let mut best = vec![f64::INFINITY; groups.len()];
        for round in 0..rounds.max(1) {
            let fastest = best.iter().copied().fold(f64::INFINITY, f64::min);
            for (i, group) in groups.iter().enumerate() {
                if round == 0 || best[i] <= 4.0 * fastest {
                    best[i] = best[i].min(self.sample_ms(group)?);
                }
            }
        }
        Ok(best)
    }

    /// One sample: GPU timestamps around the pass where the device has them, else the wall
    /// clock over `WALL_CLOCK_REPEATS` runs in one submission.
    fn sample_ms(&self, dispatches: &[&Dispatch]) -> Result<f64, DeviceLost> {
        if self.features.timestamps
            && let Some(ms) = measured(self.timestamped_ms(dispatches)?)
        {
            return Ok(ms);
        }
        let start = Instant::now();
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for _ in 0..WALL_CLOCK_REPEATS {
                for d in dispatches {
                    d.record(&mut pass);
                }
            }
        }
        self.queue.submit([encoder.finish()]);
        self.try_wait()?;
        Ok(start.elapsed().as_secs_f64() * 1e3 / WALL_CLOCK_REPEATS as f64)
    }

    fn timestamped_ms(&self, dispatches: &[&Dispatch]) -> Result<f64, DeviceLost> {
        let queries = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timing"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolved = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("timed"),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &queries,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                }),
            });
            for d in dispatches {
                d.record(&mut pass);
            }
        }
        encoder.resolve_query_set(&queries, 0..2, &resolved, 0);
        self.queue.submit([encoder.finish()]);
        let ticks: Vec<u64> = self.try_read(&resolved)?;
        let period_ns = self.queue.get_timestamp_period() as f64;
        Ok(ticks[1].saturating_sub(ticks[0]) as f64 * period_ns / 1e6)
    }
}

/// A timestamp measurement that measured something. Some drivers offer timestamps and then
/// write the same tick (or 0) at both ends: every candidate would take 0 ms, tie, and pass as
/// safe from a watchdog however slow it is, so such a sample is not a time.
fn measured(ms: f64) -> Option<f64> {
    (ms > 0.0 && ms.is_finite()).then_some(ms)
}

impl Gpu {
    /// Milliseconds of each dispatch, each timed in its own pass (GPU timestamps; None when
    /// the adapter has none, or its timestamps read 0 for every dispatch). Pass boundaries add a little time of their own.
    pub fn profile(&self, dispatches: &[&Dispatch]) -> Option<Vec<f64>> {
        if !self.features.timestamps {
            return None;
        }
        let mut times = vec![];
        // A query set holds at most 4096 queries: two a dispatch.
        for chunk in dispatches.chunks(2048) {
            let count = 2 * chunk.len() as u32;
            let queries = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let resolved = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile timestamps"),
                size: 8 * count as u64,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut encoder = self.device.create_command_encoder(&Default::default());
            for (i, d) in chunk.iter().enumerate() {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(&d.label),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &queries,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    }),
                });
                d.record(&mut pass);
            }
            encoder.resolve_query_set(&queries, 0..count, &resolved, 0);
            self.queue.submit([encoder.finish()]);
            let ticks: Vec<u64> = self.read(&resolved);
            let period_ns = self.queue.get_timestamp_period() as f64;
            times.extend(ticks.chunks(2).map(|t| t[1].saturating_sub(t[0]) as f64 * period_ns / 1e6));
        }
        // No dispatch measured (see `measured`): the timestamps cannot be trusted here.
        times.iter().any(|ms| measured(*ms).is_some()).then_some(times)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zero_ticks_are_not_a_time() {
        assert_eq!(super::measured(0.0), None);
        assert_eq!(super::measured(f64::NAN), None);
        assert_eq!(super::measured(1.5), Some(1.5));
    }
}
