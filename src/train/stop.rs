//! How a training run is asked to stop: a person's Ctrl-C, a scheduler's SIGTERM, a closed
//! terminal's SIGHUP. Each asks for one graceful stop (after the step in flight, with a
//! checkpoint). Only a second Ctrl-C, from a person, quits at once, and says what was lost.
//!
//! Signals often come in bursts that mean one thing: GNU `timeout` sends SIGTERM to the
//! program and then to its whole process group, so the program gets two at once, and a
//! scheduler may repeat its SIGTERM until it sends SIGKILL. So SIGTERM and SIGHUP never quit
//! at once, and a Ctrl-C counts as "again" only once `TOGETHER` has passed since the first
//! signal. (Before this, the second of `timeout`'s SIGTERMs quit at once, with no checkpoint
//! and no word, about one run in three.)

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    /// SIGTERM or SIGHUP: a scheduler, a container runtime, `timeout`, a closed terminal.
    Terminate,
}

/// What to do about a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Stop after the step in flight, with a checkpoint.
    StopGracefully,
    /// A stop is already under way; this signal adds nothing.
    AlreadyStopping,
    /// A person asked again: quit now.
    QuitNow,
}

/// The signals seen so far, and what each new one means.
#[derive(Default)]
pub struct Requests {
    first: Option<Instant>,
}

impl Requests {
    pub fn on(&mut self, signal: Signal, now: Instant) -> Action {
        let Some(first) = self.first else {
            self.first = Some(now);
            return Action::StopGracefully;
        };
        match signal {
            Signal::Interrupt if now.duration_since(first) >= TOGETHER => Action::QuitNow,
            Signal::Interrupt | Signal::Terminate => Action::AlreadyStopping,
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

/// Signals counted by the handlers since the start, by kind. A handler may only do what is
/// safe inside a signal handler, so it counts, and the listener thread does the rest.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);
static TERMINATIONS: AtomicUsize = AtomicUsize::new(0);

/// Catches Ctrl-C, SIGTERM and SIGHUP for the rest of the process and acts on them as the
/// module says: `StopGracefully` asks the loop to stop and says so; `QuitNow` says what
/// was lost and exits with 130.
pub fn listen() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let count = |signal, counter: &'static AtomicUsize| {
        // SAFETY: the handler only adds to an atomic, which is safe in a signal handler.
        unsafe {
            signal_hook::low_level::register(signal, move || _ = counter.fetch_add(1, Ordering::SeqCst))
        }
    };
    count(SIGINT, &INTERRUPTS)?;
    count(SIGTERM, &TERMINATIONS)?;
    #[cfg(unix)]
    count(signal_hook::consts::SIGHUP, &TERMINATIONS)?;
    std::thread::Builder::new().name("signals".into()).spawn(|| {
        let (mut requests, mut seen) = (Requests::default(), (0, 0));
        loop {
            std::thread::sleep(POLL);
            let now = (INTERRUPTS.load(Ordering::SeqCst), TERMINATIONS.load(Ordering::SeqCst));
            // Signals of one kind between two looks are one arrival.
            let arrived = [(now.0 > seen.0, Signal::Interrupt), (now.1 > seen.1, Signal::Terminate)];
            seen = now;
            for signal in arrived.into_iter().filter_map(|(came, s)| came.then_some(s)) {
                act(requests.on(signal, Instant::now()), signal);
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
        Action::QuitNow => {
            let kept = KEPT.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
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
        assert_eq!(actions(&[(Terminate, 0), (Interrupt, 10)]), [StopGracefully, AlreadyStopping]);
    }

    #[test]
    fn only_a_later_second_ctrl_c_quits_at_once() {
        use Action::*;
        use Signal::*;
        assert_eq!(actions(&[(Interrupt, 0), (Interrupt, 200)]), [StopGracefully, AlreadyStopping]);
        assert_eq!(actions(&[(Interrupt, 0), (Interrupt, 1_500)]), [StopGracefully, QuitNow]);
        assert_eq!(actions(&[(Terminate, 0), (Interrupt, 3_000)]), [StopGracefully, QuitNow]);
    }
}
