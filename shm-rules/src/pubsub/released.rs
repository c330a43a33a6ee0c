//! A wake-up for host code that waits for a block to come free.
//!
//! A pooled publisher's block is free again when every other handle of it
//! is gone: subscribers released the message, a queue dropped it, a guest
//! ended. Those drops happen in many places, so the host counts them all in
//! one place ([`Released::notify`], called wherever the ledger drops
//! handles) and a waiter ([`Released::wait`]) sleeps until the count moves
//! instead of polling. It is an event count: read [`Released::epoch`],
//! retry, and wait only if that retry failed, so a drop between the two is
//! never missed.
//!
//! Every waiter wakes at any drop and tries its own pool again (a drop
//! says nothing about whose block came free): cheap for the few waiters a
//! process has (publishers whose pools are exhausted).
//!
//! Cost where nobody waits: one atomic increment and one atomic load per
//! drop (the lock and the condition variable are touched only when a
//! waiter is registered).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long [`Released::retry`] waits at most before it tries again (a
/// drop wakes it sooner).
pub const RETRY_AFTER: Duration = Duration::from_millis(10);

/// Counts handle drops and wakes whoever waits for the next one.
#[derive(Debug, Default)]
pub struct Released {
    epoch: AtomicU64,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    moved: Condvar,
}

impl Released {
    /// How many drops so far: pass it to [`Released::wait`] after a retry.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(SeqCst)
    }

    /// Some handles were dropped: wakes the waiters.
    pub fn notify(&self) {
        self.epoch.fetch_add(1, SeqCst);
        // Sequentially consistent on both sides: either this load sees the
        // waiter's registration, or the waiter's check sees the new epoch
        // (the store-buffer pattern cannot lose both).
        if self.waiters.load(SeqCst) > 0 {
            let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.moved.notify_all();
        }
    }

    /// Calls `attempt` until it gives a result (`None`: no block free yet)
    /// or `timeout` has passed (`None`). Between attempts it waits for a
    /// drop, and at most [`RETRY_AFTER`]: an attempt may also free blocks
    /// itself (reclaiming them from stalling subscribers) or notice that
    /// its caller was evicted.
    pub fn retry<R>(&self, timeout: Duration, mut attempt: impl FnMut() -> Option<R>) -> Option<R> {
        let deadline = Instant::now() + timeout;
        loop {
            // Read before the attempt: a drop after it wakes the wait.
            let seen = self.epoch();
            if let Some(done) = attempt() {
                return Some(done);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.wait(seen, left.min(RETRY_AFTER));
        }
    }

    /// Waits until a drop after `seen` (an [`Released::epoch`]) or until
    /// `timeout`; returns whether something was dropped.
    pub fn wait(&self, seen: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.waiters.fetch_add(1, SeqCst);
        let mut held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let moved = loop {
            if self.epoch.load(SeqCst) != seen {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            held = match self.moved.wait_timeout(held, deadline - now) {
                Ok((held, _)) => held,
                Err(e) => e.into_inner().0,
            };
        };
        drop(held);
        self.waiters.fetch_sub(1, SeqCst);
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_drop_before_the_wait_is_not_missed() {
        let r = Released::default();
        let seen = r.epoch();
        r.notify();
        assert!(r.wait(seen, Duration::from_secs(60)));
    }

    #[test]
    fn a_wait_without_a_drop_times_out() {
        let r = Released::default();
        assert!(!r.wait(r.epoch(), Duration::from_millis(5)));
    }

    #[test]
    fn a_drop_on_another_thread_wakes_the_waiter() {
        let r = Arc::new(Released::default());
        let seen = r.epoch();
        let notifier = {
            let r = r.clone();
            std::thread::spawn(move || {
                // Once the waiter has registered.
                while r.waiters.load(SeqCst) == 0 {
                    std::thread::yield_now();
                }
                r.notify();
            })
        };
        assert!(r.wait(seen, Duration::from_secs(60)));
        notifier.join().unwrap();
    }
}
