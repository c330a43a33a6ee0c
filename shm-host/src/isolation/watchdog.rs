//! Time isolation: no guest can keep the others waiting, or run forever.
//!
//! Every engine made by [`crate::ShmHost::engine`] has epoch interruption
//! on and a ticker thread that advances its epoch every
//! [`crate::ShmConfig::epoch_tick`]. Every store gets a [`Watchdog`]
//! (through its [`crate::ShmCtx`]) armed with [`Watchdog::arm`]: at each tick
//! that a guest spends running wasm, the watchdog checks that the guest was
//! not evicted and has CPU budget left, and otherwise stops it with a trap
//! that says why ([`Stopped`]). Ticks spent waiting inside host calls do not
//! count: the budget is wasm execution time, to a tick's precision.
//!
//! Eviction is decided elsewhere (publish/subscribe evicts a subscriber that
//! stalls its topic, see [`crate::pubsub`]); the watchdog makes it stick: the
//! guest's next instruction (or its next host call) traps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use wasmtime::{CallHook, Engine, Store, UpdateDeadline};

use crate::os::windows::Windows;

/// Why the host stopped a guest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    /// The guest was evicted (it stalled others).
    #[error("{guest} was evicted: {reason}")]
    Evicted {
        /// The guest's name.
        guest: String,
        /// What it did.
        reason: String,
    },
    /// The guest used up its CPU budget.
    #[error("{guest} ran wasm for longer than its CPU budget of {limit:?}: raise the budget (`--cpu-limit`) or end the loop")]
    CpuLimit {
        /// The guest's name.
        guest: String,
        /// The budget.
        limit: Duration,
    },
}

/// One guest's time state: whether it was stopped, and its CPU budget.
#[derive(Debug)]
pub struct Watchdog {
    guest: String,
    stopped: OnceLock<Stopped>,
    ticks: AtomicU64,
    /// The length of a tick in nanoseconds (to charge host time in ticks).
    tick_ns: u64,
    /// Host time charged so far, in nanoseconds: short charges add up to
    /// whole ticks.
    charged_ns: AtomicU64,
    budget: Option<(u64, Duration)>,
    windows: Arc<Windows>,
}

impl Watchdog {
    /// A watchdog for `guest`, with `cpu_limit` of wasm execution measured
    /// in ticks of `tick`.
    pub(crate) fn new(guest: &str, cpu_limit: Option<Duration>, tick: Duration) -> Arc<Watchdog> {
        let tick_ns = tick.as_nanos().max(1);
        Arc::new(Watchdog {
            guest: guest.to_string(),
            stopped: OnceLock::new(),
            ticks: AtomicU64::new(0),
            tick_ns: u64::try_from(tick_ns).unwrap_or(u64::MAX),
            charged_ns: AtomicU64::new(0),
            budget: cpu_limit.map(|l| {
                let ticks = l.as_nanos().div_ceil(tick_ns);
                (u64::try_from(ticks).unwrap_or(u64::MAX), l)
            }),
            windows: Windows::new(),
        })
    }

    /// The guest's write windows (see [`crate::os::windows`]).
    pub(crate) fn windows(&self) -> &Arc<Windows> {
        &self.windows
    }

    /// Why the guest was stopped, if it was.
    pub fn stopped(&self) -> Option<&Stopped> {
        self.stopped.get()
    }

    /// `Err` once the guest was stopped: host functions return it (a trap
    /// of that guest) instead of serving a guest that is gone.
    pub fn check(&self) -> Result<(), Stopped> {
        match self.stopped.get() {
            Some(s) => Err(s.clone()),
            None => Ok(()),
        }
    }

    /// Marks the guest evicted for `reason`; `false` if it was stopped
    /// already.
    pub(crate) fn evict(&self, reason: String) -> bool {
        self.stopped
            .set(Stopped::Evicted {
                guest: self.guest.clone(),
                reason,
            })
            .is_ok()
    }

    /// Charges `spent`, host time spent working on the guest's behalf (a
    /// copy the copy fallback made for it), to its CPU budget as if it had
    /// run wasm that long: a guest that makes the host work for it cannot
    /// outrun its budget that way. Past the budget the guest is stopped
    /// (its next instruction or host call traps).
    pub(crate) fn charge(&self, spent: Duration) {
        let tick = self.tick_ns.max(1);
        let spent = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        // Whole ticks go to the count; the rest waits for the next charge.
        let before = self.charged_ns.fetch_add(spent, Ordering::Relaxed);
        let ticks = before.saturating_add(spent) / tick - before / tick;
        if ticks == 0 {
            return;
        }
        let used = self
            .ticks
            .fetch_add(ticks, Ordering::Relaxed)
            .saturating_add(ticks);
        if let Some((budget, limit)) = self.budget {
            if used > budget {
                let _ = self.stopped.set(Stopped::CpuLimit {
                    guest: self.guest.clone(),
                    limit,
                });
            }
        }
    }

    /// Arms `store` (whose engine has epoch interruption on): every tick the
    /// guest spends in wasm is counted against its budget, and a stopped
    /// guest traps with the reason. It also installs the store's call hook,
    /// which gives the guest's thread the rights of its write windows while
    /// its wasm runs and takes them back when it returns (see
    /// `crate::os::windows`); the store's call hook must not be replaced.
    /// [`crate::new_store`] calls it: the only way to an armed store.
    pub(crate) fn arm<T: 'static>(self: &Arc<Self>, store: &mut Store<T>) {
        let windows = self.windows.clone();
        store.call_hook(move |_, hook| {
            match hook {
                CallHook::CallingWasm | CallHook::ReturningFromHost => windows.enter(),
                CallHook::ReturningFromWasm => windows.leave(),
                CallHook::CallingHost => {}
            }
            Ok(())
        });
        self.windows.hooked();
        let dog = self.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            dog.check()?;
            let used = dog.ticks.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some((ticks, limit)) = dog.budget {
                if used > ticks {
                    let _ = dog.stopped.set(Stopped::CpuLimit {
                        guest: dog.guest.clone(),
                        limit,
                    });
                    dog.check()?;
                }
            }
            Ok(UpdateDeadline::Continue(1))
        });
    }
}

/// Advances `engine`'s epoch every `tick` for as long as `alive` lives.
pub(crate) fn start_ticker<A: Send + Sync + 'static>(
    engine: Engine,
    tick: Duration,
    alive: Weak<A>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("shm-host-epoch".into())
        .spawn(move || {
            while alive.strong_count() > 0 {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_time_charged_to_a_guest_stops_it_at_its_budget() {
        let dog = Watchdog::new(
            "copier",
            Some(Duration::from_secs(1)),
            Duration::from_millis(10),
        );
        // Short charges add up: 90 of 1 ms each, then 0.8 s.
        for _ in 0..90 {
            dog.charge(Duration::from_millis(1));
        }
        dog.charge(Duration::from_millis(800));
        assert!(dog.check().is_ok(), "0.89 s of a 1 s budget");
        for _ in 0..150 {
            dog.charge(Duration::from_millis(1));
        }
        assert!(matches!(
            dog.check(),
            Err(Stopped::CpuLimit { ref guest, .. }) if guest == "copier"
        ));
        // Without a budget, charging never stops a guest.
        let free = Watchdog::new("free", None, Duration::from_millis(10));
        free.charge(Duration::from_secs(3600));
        assert!(free.check().is_ok());
    }
}
