//! Publish/subscribe bookkeeping: topics, one bounded queue of block
//! handles per subscription, and what happens when a queue is full.
//!
//! Both the wasm host's broker and the guest crate's native backend use
//! this, so the two cannot drift. It only moves [`HandleId`]s; cloning,
//! moving and dropping the handles in the [`crate::Ledger`] is the
//! caller's, through the callbacks given here.
//!
//! Lock order: a topic, then a queue; callbacks run with a queue locked
//! and may take the ledger's lock (never the other way round).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::HandleId;

/// What `publish` does when a subscription's queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    /// Wait until the subscriber takes a message or leaves.
    #[default]
    Block,
    /// Drop that subscriber's oldest queued message and count it.
    DropOldest,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<HandleId>,
    /// Stream readers waiting for an item.
    wakers: Vec<Waker>,
    /// The topic's publisher is gone: readers stop waiting once empty.
    closed: bool,
    /// The subscription was dropped: publishers stop queueing to it.
    left: bool,
    dropped: u64,
}

/// One subscription's queue of messages (block handles).
#[derive(Default)]
pub struct Queue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

impl Queue {
    /// Wakes waiting readers and publishers (with the state locked).
    fn wake(&self, s: &mut QueueState) {
        self.changed.notify_all();
        for w in s.wakers.drain(..) {
            w.wake();
        }
    }

    /// Queues `handle`, at most `bound` messages deep: when full, waits
    /// (`Block`) or drops the oldest through `drop_handle` (`DropOldest`).
    /// Returns `false`, queueing nothing, when the subscriber left: the
    /// caller still owns `handle`.
    pub fn push(
        &self,
        handle: HandleId,
        bound: usize,
        overflow: Overflow,
        mut drop_handle: impl FnMut(HandleId),
    ) -> bool {
        let bound = bound.max(1);
        let mut s = lock(&self.state);
        while s.items.len() >= bound && !s.left {
            match overflow {
                Overflow::Block => s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
                Overflow::DropOldest => {
                    let oldest = s.items.pop_front().expect("the queue is full");
                    s.dropped += 1;
                    drop_handle(oldest);
                }
            }
        }
        if s.left {
            return false;
        }
        s.items.push_back(handle);
        self.wake(&mut s);
        true
    }

    fn take(&self, s: &mut QueueState) -> Option<HandleId> {
        let h = s.items.pop_front()?;
        // A publisher may wait for space.
        self.wake(s);
        Some(h)
    }

    /// The next message, waiting for one; `None` once the publisher is gone
    /// and the queue is empty.
    pub fn pop_wait(&self) -> Option<HandleId> {
        let mut s = lock(&self.state);
        loop {
            if let Some(h) = self.take(&mut s) {
                return Some(h);
            }
            if s.closed || s.left {
                return None;
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Puts a message just taken back at the front of the queue (a reader
    /// that could not take it after all). It may exceed the bound by one.
    pub fn unpop(&self, handle: HandleId) {
        let mut s = lock(&self.state);
        s.items.push_front(handle);
        self.wake(&mut s);
    }

    /// The next message if one is queued.
    pub fn try_pop(&self) -> Option<HandleId> {
        self.take(&mut lock(&self.state))
    }

    /// For a stream reader: the next message, `Ready(None)` at the end, or
    /// `Pending` (registering `cx`'s waker) until one arrives. With
    /// `finish`, does not wait: `Ready(None)` if nothing is queued.
    pub fn poll_pop(&self, cx: &mut Context<'_>, finish: bool) -> Poll<Option<HandleId>> {
        let mut s = lock(&self.state);
        if let Some(h) = self.take(&mut s) {
            return Poll::Ready(Some(h));
        }
        if s.closed || s.left || finish {
            return Poll::Ready(None);
        }
        s.wakers.push(cx.waker().clone());
        Poll::Pending
    }

    /// Is the queue ended for good (publisher gone or subscriber left) and
    /// empty?
    pub fn is_finished(&self) -> bool {
        let s = lock(&self.state);
        s.items.is_empty() && (s.closed || s.left)
    }

    /// Messages lost to `DropOldest`.
    pub fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }

    fn set_closed(&self, closed: bool) {
        let mut s = lock(&self.state);
        s.closed = closed;
        self.wake(&mut s);
    }
}

/// The pool of a publisher that lets its subscribers map it (a pooled
/// topic): subscribers map every block once and receive messages as places
/// in it. Compare pools with [`Arc::ptr_eq`].
#[derive(Debug)]
pub struct SharedPool {
    /// The pool's blocks (handles held by the broker).
    pub blocks: Vec<HandleId>,
    /// The size of each block.
    pub element_size: u32,
}

#[derive(Default)]
struct TopicState {
    publisher: bool,
    had_publisher: bool,
    queues: Vec<Arc<Queue>>,
    pool: Option<Arc<SharedPool>>,
}

/// A named topic: at most one publisher, any number of subscriptions.
#[derive(Default)]
pub struct Topic {
    state: Mutex<TopicState>,
}

impl Topic {
    /// Makes the caller the topic's publisher; `false` if it has one.
    /// Subscriptions waiting on an ended publisher wait again.
    pub fn open_publisher(&self) -> bool {
        let mut t = lock(&self.state);
        if t.publisher {
            return false;
        }
        t.publisher = true;
        t.had_publisher = true;
        for q in &t.queues {
            q.set_closed(false);
        }
        true
    }

    /// Offers the publisher's pool for mapping (after
    /// [`Topic::open_publisher`]); it is withdrawn when the publisher closes.
    pub fn share_pool(&self, pool: Arc<SharedPool>) {
        lock(&self.state).pool = Some(pool);
    }

    /// The pool of the topic's publisher, if it shares it.
    pub fn pool(&self) -> Option<Arc<SharedPool>> {
        lock(&self.state).pool.clone()
    }

    /// The publisher is gone: readers end once their queues are empty.
    pub fn close_publisher(&self) {
        let mut t = lock(&self.state);
        t.publisher = false;
        t.pool = None;
        for q in &t.queues {
            q.set_closed(true);
        }
    }

    /// The subscriptions now.
    pub fn queues(&self) -> Vec<Arc<Queue>> {
        lock(&self.state).queues.clone()
    }

    /// How many subscriptions the topic has.
    pub fn subscriber_count(&self) -> usize {
        lock(&self.state).queues.len()
    }

    /// Ends the subscription `queue`: no more messages are queued to it,
    /// a publisher waiting for space in it goes on, and the handles still
    /// queued are returned for the caller to drop.
    pub fn leave(&self, queue: &Arc<Queue>) -> Vec<HandleId> {
        lock(&self.state).queues.retain(|q| !Arc::ptr_eq(q, queue));
        let mut s = lock(&queue.state);
        s.left = true;
        let queued = s.items.drain(..).collect();
        queue.wake(&mut s);
        queued
    }
}

/// The topics of one host (or one native process).
#[derive(Default)]
pub struct Topics {
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    subscriptions: AtomicUsize,
}

impl Topics {
    /// The topic called `name`, created on first use.
    pub fn topic(&self, name: &str) -> Arc<Topic> {
        lock(&self.topics)
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// A new subscription to `topic`: it receives what is published from
    /// now on (and ends at once if the topic's publisher already ended).
    pub fn subscribe(&self, topic: &Topic) -> Arc<Queue> {
        let mut t = lock(&topic.state);
        let queue = Arc::new(Queue::default());
        lock(&queue.state).closed = t.had_publisher && !t.publisher;
        t.queues.push(queue.clone());
        self.subscriptions.fetch_add(1, Ordering::SeqCst);
        queue
    }

    /// How many subscriptions were ever made.
    pub fn subscriptions(&self) -> usize {
        self.subscriptions.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_oldest_drops_and_counts() {
        let topics = Topics::default();
        let t = topics.topic("t");
        assert!(t.open_publisher());
        assert!(!t.open_publisher());
        let q = topics.subscribe(&t);
        let mut dropped = Vec::new();
        for i in 1..=3 {
            assert!(q.push(HandleId(i), 2, Overflow::DropOldest, |h| dropped.push(h)));
        }
        assert_eq!(dropped, [HandleId(1)]);
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.try_pop(), Some(HandleId(2)));
        t.close_publisher();
        assert_eq!(q.pop_wait(), Some(HandleId(3)));
        assert_eq!(q.pop_wait(), None);
        assert!(q.is_finished());
    }

    #[test]
    fn unpop_and_shared_pools() {
        let topics = Topics::default();
        let t = topics.topic("t");
        let q = topics.subscribe(&t);
        assert!(q.push(HandleId(1), 4, Overflow::Block, |_| {}));
        assert!(q.push(HandleId(2), 4, Overflow::Block, |_| {}));
        let first = q.try_pop().unwrap();
        q.unpop(first);
        assert_eq!(q.try_pop(), Some(HandleId(1)));
        assert!(t.pool().is_none());
        assert!(t.open_publisher());
        let pool = Arc::new(SharedPool {
            blocks: vec![HandleId(7)],
            element_size: 10,
        });
        t.share_pool(pool.clone());
        assert!(Arc::ptr_eq(&t.pool().unwrap(), &pool));
        t.close_publisher();
        assert!(t.pool().is_none(), "a closed publisher's pool is withdrawn");
    }

    #[test]
    fn a_full_queue_blocks_until_read_or_left() {
        let topics = Topics::default();
        let t = topics.topic("t");
        let q = topics.subscribe(&t);
        assert!(q.push(HandleId(1), 1, Overflow::Block, |_| {}));
        std::thread::scope(|s| {
            let pusher = s.spawn(|| q.push(HandleId(2), 1, Overflow::Block, |_| {}));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!pusher.is_finished(), "the second push waits for space");
            assert_eq!(q.try_pop(), Some(HandleId(1)));
            assert!(pusher.join().unwrap());
        });
        let pusher_left = std::thread::scope(|s| {
            let pusher = s.spawn(|| q.push(HandleId(3), 1, Overflow::Block, |_| {}));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(t.leave(&q), [HandleId(2)]);
            pusher.join().unwrap()
        });
        assert!(
            !pusher_left,
            "a push to a subscription that left queues nothing"
        );
        assert_eq!(topics.subscriptions(), 1);
        assert_eq!(t.subscriber_count(), 0);
    }
}
