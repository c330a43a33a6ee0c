//! Ending a run cleanly: on SIGINT, SIGTERM or at `--duration` (part of
//! the `shm-host` binary). A second signal exits at once.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use wasmtime::error::Context;
use wasmtime::Result;

/// Why a run was stopped before its end.
#[derive(Clone, Copy, Debug)]
pub enum Why {
    /// A signal (its number).
    Signal(i32),
    /// `--duration` passed.
    Duration(Duration),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Why::Signal(SIGINT) => f.write_str("SIGINT"),
            Why::Signal(SIGTERM) => f.write_str("SIGTERM"),
            Why::Signal(n) => write!(f, "signal {n}"),
            Why::Duration(d) => write!(f, "--duration of {} s reached", d.as_secs_f64()),
        }
    }
}

/// What stops a run: the signals' flag and the duration's deadline.
pub struct Stop {
    signal: Arc<AtomicUsize>,
    deadline: Option<(Instant, Duration)>,
    stopping: Arc<AtomicBool>,
}

impl Stop {
    /// Catches SIGINT and SIGTERM (a second one exits at once, with 130 or
    /// 143) and starts the `duration`'s clock.
    pub fn install(duration: Option<Duration>) -> Result<Stop> {
        let signal = Arc::new(AtomicUsize::new(0));
        let again = Arc::new(AtomicBool::new(false));
        for (sig, code) in [(SIGINT, 130), (SIGTERM, 143)] {
            // Registered first, so it sees the flag as it was before this
            // signal: set by an earlier one only.
            signal_hook::flag::register_conditional_shutdown(sig, code, again.clone())
                .context("catching signals")?;
            signal_hook::flag::register(sig, again.clone()).context("catching signals")?;
            signal_hook::flag::register_usize(sig, signal.clone(), sig as usize)
                .context("catching signals")?;
        }
        Ok(Stop {
            signal,
            deadline: duration.map(|d| (Instant::now() + d, d)),
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Set once a stop began: what ends after it was stopped, not failed.
    pub fn stopping(&self) -> Arc<AtomicBool> {
        self.stopping.clone()
    }

    /// Waits until `run` ends (`None`) or a stop is asked for.
    pub fn wait<T>(&self, run: &JoinHandle<T>) -> Option<Why> {
        loop {
            if run.is_finished() {
                return None;
            }
            let why = match self.signal.load(Ordering::SeqCst) {
                0 => self
                    .deadline
                    .filter(|(at, _)| Instant::now() >= *at)
                    .map(|(_, d)| Why::Duration(d)),
                // Signal numbers are small.
                sig => Some(Why::Signal(sig as i32)),
            };
            if let Some(why) = why {
                self.stopping.store(true, Ordering::SeqCst);
                return Some(why);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits at most `timeout` for `run` to end; returns whether it did.
pub fn finished_within<T>(run: &JoinHandle<T>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !run.is_finished() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
