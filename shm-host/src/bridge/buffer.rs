//! The bounded buffer between the network and the host: samples waiting to
//! be written into a pool block (an import), or messages waiting to be sent
//! (an export). When it is full it does what a local queue does under the
//! same [`Overflow`] policy: waits, or drops the oldest and counts it.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::pubsub::Overflow;

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    dropped: u64,
}

/// A bounded FIFO shared by one producer and one consumer thread.
pub(crate) struct Buffer<T> {
    bound: usize,
    overflow: Overflow,
    state: Mutex<State<T>>,
    changed: Condvar,
}

impl<T> Buffer<T> {
    pub(crate) fn new(bound: usize, overflow: Overflow) -> Buffer<T> {
        Buffer {
            bound: bound.max(1),
            overflow,
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                dropped: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `item`; when full, waits for room (`Block`) or drops the
    /// oldest (`DropOldest`). Returns `false` (dropping `item`) once closed.
    pub(crate) fn push(&self, item: T) -> bool {
        let mut s = self.lock();
        while s.items.len() >= self.bound && !s.closed {
            match self.overflow {
                Overflow::Block => s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
                Overflow::DropOldest => {
                    s.items.pop_front();
                    s.dropped += 1;
                }
            }
        }
        if s.closed {
            return false;
        }
        s.items.push_back(item);
        self.changed.notify_all();
        true
    }

    /// The oldest item, waiting at most `timeout`; `None` when nothing
    /// came (or the buffer is closed and empty).
    pub(crate) fn pop_timeout(&self, timeout: Duration) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if let Some(item) = s.items.pop_front() {
                self.changed.notify_all();
                return Some(item);
            }
            let now = Instant::now();
            if s.closed || now >= deadline {
                return None;
            }
            s = self
                .changed
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Ends the buffer: pushes fail, a waiting producer goes on; what is
    /// buffered can still be taken.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Is it closed?
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Is it closed and empty?
    pub(crate) fn is_finished(&self) -> bool {
        let s = self.lock();
        s.closed && s.items.is_empty()
    }

    /// Items dropped by the `DropOldest` policy.
    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn drop_oldest_keeps_the_newest_and_counts() {
        let b = Buffer::new(2, Overflow::DropOldest);
        for i in 0..5 {
            assert!(b.push(i));
        }
        assert_eq!(b.dropped(), 3);
        assert_eq!(b.pop_timeout(Duration::ZERO), Some(3));
        assert_eq!(b.pop_timeout(Duration::ZERO), Some(4));
        assert_eq!(b.pop_timeout(Duration::from_millis(1)), None);
        b.close();
        assert!(!b.push(9));
        assert!(b.is_finished());
    }

    #[test]
    fn block_waits_for_room_and_close_releases_the_producer() {
        let b = Arc::new(Buffer::new(1, Overflow::Block));
        assert!(b.push(1));
        let producer = {
            let b = b.clone();
            std::thread::spawn(move || b.push(2))
        };
        assert_eq!(b.pop_timeout(Duration::from_secs(60)), Some(1));
        assert_eq!(b.pop_timeout(Duration::from_secs(60)), Some(2));
        assert!(producer.join().unwrap());
        // Full again: a producer waits until the buffer closes.
        assert!(b.push(3));
        let producer = {
            let b = b.clone();
            std::thread::spawn(move || b.push(4))
        };
        std::thread::sleep(Duration::from_millis(20));
        b.close();
        assert!(!producer.join().unwrap());
        assert_eq!(b.pop_timeout(Duration::ZERO), Some(3));
        assert!(b.is_finished());
        assert_eq!(b.dropped(), 0);
    }
}
