//! How long a wait for the GPU may take before the run counts the device as hung: a hang (or
//! a driver that stopped answering without losing the device) would otherwise block the run
//! for ever. Past the limit the run ends as for a lost device, its last checkpoint intact.
//!
//! The limit follows the steps' own time: `SLOWEST_STEPS` times the slowest step so far
//! (after the first steps, which also compile every kernel), and never under `MIN_WAIT`.

use crate::gpu::{Gpu, WaitLimit};
use std::time::{Duration, Instant};

/// The first steps compile every kernel (minutes on a CPU adapter with cold caches): until
/// a step has been timed, a wait may take this long.
const FIRST_STEPS_WAIT: Duration = Duration::from_secs(30 * 60);
/// Steps of an invocation that are not timed (they compile and warm up).
const UNTIMED_STEPS: u64 = 2;
const SLOWEST_STEPS: u32 = 20;
const MIN_WAIT: Duration = Duration::from_secs(60);

/// Test hook: `SHAKESHAKE_WAIT_LIMIT_MS=N` fixes the limit at N ms from the first step.
fn fixed_limit() -> Option<Duration> {
    std::env::var("SHAKESHAKE_WAIT_LIMIT_MS").ok()?.parse().ok().map(Duration::from_millis)
}

pub struct Watchdog {
    steps: u64,
    slowest: Duration,
    last: Instant,
}

impl Watchdog {
    /// Sets the first steps' limit on `gpu`.
    pub fn start(gpu: &Gpu) -> Watchdog {
        let why = "the limit before a step has been timed (the first steps compile the kernels)";
        set(gpu, FIRST_STEPS_WAIT, why.into());
        Watchdog { steps: 0, slowest: Duration::ZERO, last: Instant::now() }
    }

    /// One more step was submitted and the loop waited as it does: time it, and raise the
    /// limit if it was the slowest yet.
    pub fn step_done(&mut self, gpu: &Gpu) {
        let took = self.last.elapsed();
        self.last = Instant::now();
        self.steps += 1;
        if self.steps > UNTIMED_STEPS && took > self.slowest {
            self.slowest = took;
            let why = format!("{SLOWEST_STEPS} times the slowest step so far ({took:.1?})");
            set(gpu, (took * SLOWEST_STEPS).max(MIN_WAIT), why);
        }
    }
}

fn set(gpu: &Gpu, limit: Duration, why: String) {
    let limit = match fixed_limit() {
        Some(fixed) => WaitLimit { limit: fixed, why: "the limit SHAKESHAKE_WAIT_LIMIT_MS sets".into() },
        None => WaitLimit { limit, why },
    };
    gpu.set_wait_limit(Some(limit));
}
