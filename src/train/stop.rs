//! How a training run is asked to stop: a person's Ctrl-C, a scheduler's SIGTERM, a closed
//! terminal's SIGHUP, and SIGUSR1, which `mpirun` passes to every rank at once (it gives the
//! ranks a SIGTERM only a moment before it kills them). Each asks for one graceful stop (after the step in flight, with a
//! checkpoint). Only a second Ctrl-C, from a person, quits at once, and says what was lost.
//!
//! Signals often come in bursts that mean one thing: GNU `timeout` sends SIGTERM to the
//! program and then to its whole process group, so the program gets two at once, and a
//! scheduler may repeat its SIGTERM until it sends SIGKILL. So SIGTERM and SIGHUP never quit
//! at once, and a Ctrl-C counts as "again" only once `TOGETHER` has passed since the first
//! Ctrl-C. (Before this, the second of `timeout`'s SIGTERMs quit at once, with no checkpoint
//! and no word, about one run in three.) Each signal's time is taken when it arrives, by its
//! handler, not when the listener thread gets to it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Signals closer together than this are one request.
const TOGETHER: Duration = Duration::from_secs(1);

/// How often the listener looks at what the signal handlers counted.
const POLL: Duration = Duration::from_millis(50);

/// What a signal asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C (SIGINT): a person at the terminal.
    Interrupt,
    /// SIGTERM, SIGHUP or SIGUSR1: a scheduler, a container runtime, `timeout`, a closed
    /// terminal, `mpirun` passing on a user's `kill -USR1`.
    Terminate,
}

/// What to do about a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Stop after the step in flight, with a checkpoint.
    StopGracefully,
    /// A stop is already under way; this signal adds nothing.
    AlreadyStopping,
    /// A person's first Ctrl-C, with a stop already under way: tell them how to quit now.
    SayHowToQuit,
    /// A person asked again: quit now.
    QuitNow,
}

/// The signals seen so far, and what each new one means.
#[derive(Default)]
pub struct Requests {
    stopping: bool,
    first_interrupt: Option<Instant>,
}

impl Requests {
    /// What `signal`, arrived at `at`, asks for.
    pub fn on(&mut self, signal: Signal, at: Instant) -> Action {
        let first_stop = !std::mem::replace(&mut self.stopping, true);
        match (signal, self.first_interrupt) {
            (Signal::Terminate, _) if first_stop => Action::StopGracefully,
            (Signal::Terminate, _) => Action::AlreadyStopping,
            (Signal::Interrupt, None) => {
                self.first_interrupt = Some(at);
                if first_stop { Action::StopGracefully } else { Action::SayHowToQuit }
            }
            (Signal::Interrupt, Some(first)) if at.saturating_duration_since(first) >= TOGETHER => {
                Action::QuitNow
            }
            (Signal::Interrupt, Some(_)) => Action::AlreadyStopping,
        }
    }
}

/// Set once a stop has been asked for (by a signal, or `request_stop`).
static STOP: AtomicBool = AtomicBool::new(false);

/// Ask the training loop to stop after the step in flight, with a checkpoint.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether a stop has been asked for.
pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// What a quit at once loses and leaves, kept up to date by the training loop: said when a
/// person quits, so that they know.
static KEPT: Mutex<String> = Mutex::new(String::new());

/// Records what a quit now would leave: `checkpoint` (whether one is on disk) and `what` (which
/// one, and how to continue).
pub fn set_kept(checkpoint: bool, what: String) {
    let lost = if checkpoint { "the steps since the last checkpoint are lost" } else { "nothing was saved" };
    *KEPT.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = format!("{lost}. {what}");
}

/// Signals counted by the handlers, by kind, and when the last of each arrived (milliseconds
/// since `listen`). A handler may only do what is safe inside a signal handler (atomics, the
/// monotonic clock), so it counts and notes the time, and the listener thread does the rest.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);
static TERMINATIONS: AtomicUsize = AtomicUsize::new(0);
static LAST_INTERRUPT_MS: AtomicU64 = AtomicU64::new(0);
static LAST_TERMINATION_MS: AtomicU64 = AtomicU64::new(0);

/// Catches Ctrl-C, SIGTERM, SIGHUP and SIGUSR1 for the rest of the process and acts on them as the
/// module says: `StopGracefully` asks the loop to stop and says so; `QuitNow` says what
/// was lost and exits with 130.
pub fn listen() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let started = Instant::now();
    let count = |signal, counter: &'static AtomicUsize, last: &'static AtomicU64| {
        let note = move || {
            last.store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
            counter.fetch_add(1, Ordering::SeqCst);
        };
        // SAFETY: the handler only reads the monotonic clock (clock_gettime, which is safe in
        // a signal handler) and stores to atomics.
        unsafe { signal_hook::low_level::register(signal, note) }
    };
    count(SIGINT, &INTERRUPTS, &LAST_INTERRUPT_MS)?;
    count(SIGTERM, &TERMINATIONS, &LAST_TERMINATION_MS)?;
    #[cfg(unix)]
    count(signal_hook::consts::SIGHUP, &TERMINATIONS, &LAST_TERMINATION_MS)?;
    #[cfg(unix)]
    count(signal_hook::consts::SIGUSR1, &TERMINATIONS, &LAST_TERMINATION_MS)?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let (mut requests, mut seen) = (Requests::default(), (0, 0));
        loop {
            std::thread::sleep(POLL);
            let now = (INTERRUPTS.load(Ordering::SeqCst), TERMINATIONS.load(Ordering::SeqCst));
            let at = |last: &AtomicU64| started + Duration::from_millis(last.load(Ordering::SeqCst));
            // Signals of one kind between two looks are one arrival, at the last one's time.
            let mut arrived = vec![];
            if now.0 > seen.0 {
                arrived.push((at(&LAST_INTERRUPT_MS), Signal::Interrupt));
            }
            if now.1 > seen.1 {
                arrived.push((at(&LAST_TERMINATION_MS), Signal::Terminate));
            }
            arrived.sort_by_key(|(at, _)| *at);
            seen = now;
            for (at, signal) in arrived {
                act(requests.on(signal, at), signal);
            }
        }
    })?;
    Ok(())
}

fn act(action: Action, signal: Signal) {
    match action {
        Action::StopGracefully => {
            request_stop();
            let again = match signal {
                Signal::Interrupt => " (Ctrl-C again to quit at once)",
                Signal::Terminate => "",
            };
            eprintln!("\nStopping after this step, with a checkpoint{again}...");
        }
        Action::AlreadyStopping => {}
        Action::SayHowToQuit => {
            eprintln!(
                "\nAlready stopping after this step, with a checkpoint (Ctrl-C again to quit at once)..."
            )
        }
        Action::QuitNow => {
            let kept = KEPT.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
            // Before the run's directory is taken there is nothing to lose yet.
            let kept = if kept.is_empty() { "nothing was saved.".to_string() } else { kept };
            eprintln!("\nQuit at once, without writing a checkpoint: {kept}");
            std::process::exit(130);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(signals: &[(Signal, u64)]) -> Vec<Action> {
        let (mut requests, start) = (Requests::default(), Instant::now());
        signals.iter().map(|&(s, ms)| requests.on(s, start + Duration::from_millis(ms))).collect()
    }

    #[test]
    fn any_number_of_terminations_ask_for_one_graceful_stop() {
        use Action::*;
        use Signal::*;
        let burst = actions(&[(Terminate, 0), (Terminate, 0), (Terminate, 5_000), (Terminate, 60_000)]);
        assert_eq!(burst, [StopGracefully, AlreadyStopping, AlreadyStopping, AlreadyStopping]);
        // A Ctrl-C arriving with a SIGTERM (a terminal's and a scheduler's) is one request.
        assert_eq!(actions(&[(Terminate, 0), (Interrupt, 10)]), [StopGracefully, SayHowToQuit]);
    }

    #[test]
    fn only_a_later_second_ctrl_c_quits_at_once() {
        use Action::*;
        use Signal::*;
        assert_eq!(actions(&[(Interrupt, 0), (Interrupt, 200)]), [StopGracefully, AlreadyStopping]);
        assert_eq!(actions(&[(Interrupt, 0), (Interrupt, 1_500)]), [StopGracefully, QuitNow]);
        // After a scheduler's SIGTERM, a person's first Ctrl-C is told how to quit; the next quits.
        let after_term = actions(&[(Terminate, 0), (Interrupt, 3_000), (Interrupt, 4_500)]);
        assert_eq!(after_term, [StopGracefully, SayHowToQuit, QuitNow]);
    }
}
