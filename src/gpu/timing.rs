//! Timing GPU work: timestamp queries where the device has them, wall clock otherwise.

use super::{Dispatch, Gpu};
use std::time::Instant;

impl Gpu {
    /// Milliseconds of one run of `dispatches` (recorded in one pass): the fastest of `reps`
    /// timed runs after one warm-up (which also compiles the pipelines). The fastest, since
    /// other work on the machine only ever adds time.
    pub fn time_ms(&self, dispatches: &[&Dispatch], reps: usize) -> f64 {
        self.time_ms_bounded(dispatches, reps, f64::INFINITY)
    }

    /// As `time_ms`, but a warm-up slower than `give_up_ms` is returned as the figure at once:
    /// when choosing among variants, one 30x slower than the best needs no careful timing.
    pub fn time_ms_bounded(&self, dispatches: &[&Dispatch], reps: usize, give_up_ms: f64) -> f64 {
        let warm_up = Instant::now();
        self.run(dispatches);
        let warm_up_ms = warm_up.elapsed().as_secs_f64() * 1e3;
        if warm_up_ms > give_up_ms {
            return warm_up_ms;
        }
        let samples: Vec<f64> = (0..reps.max(1))
            .map(|_| {
                if self.features.timestamps {
                    self.timestamped_ms(dispatches)
                } else {
                    let start = Instant::now();
                    self.run(dispatches);
                    start.elapsed().as_secs_f64() * 1e3
                }
            })
            .collect();
        samples.into_iter().fold(f64::INFINITY, f64::min)
    }

    fn timestamped_ms(&self, dispatches: &[&Dispatch]) -> f64 {
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
        let ticks: Vec<u64> = self.read(&resolved);
        let period_ns = self.queue.get_timestamp_period() as f64;
        ticks[1].saturating_sub(ticks[0]) as f64 * period_ns / 1e6
    }
}

impl Gpu {
    /// Milliseconds of each dispatch, each timed in its own pass (GPU timestamps; None when
    /// the adapter has none). Pass boundaries add a little time of their own.
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
        Some(times)
    }
}
