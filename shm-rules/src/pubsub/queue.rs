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
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::ring::{Offered, RingStage};
use crate::{GuestId, HandleId};

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
    /// Threads blocked on `changed` (readers or publishers): without any,
    /// a change notifies nobody (a futex call saved per message).
    waiting: usize,
    /// The topic's publisher is gone: readers stop waiting once empty.
    closed: bool,
    /// The subscription was dropped: publishers stop queueing to it.
    left: bool,
    dropped: u64,
    /// The subscription's lease ring, if it has one: queued messages move
    /// into it while it has room (see [`Queue::attach_ring`]).
    ring: Option<RingStage>,
}

/// One subscription's queue of messages (block handles).
pub struct Queue {
    /// The guest that subscribed.
    owner: GuestId,
    /// This subscription's own policy for a full queue, if it has one
    /// (a recorder's: never slow the publisher); otherwise the host's.
    overflow: Option<Overflow>,
    state: Mutex<QueueState>,
    changed: Condvar,
}

/// How often a publisher that waits for room in a full ring reads the
/// ring's returned region again: the subscriber returns messages without
/// telling the host (its own wait call wakes the publisher sooner).
pub const RING_POLL: Duration = Duration::from_millis(1);

/// What [`Queue::wait_ring`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingWaited {
    /// How many messages the ring offered so far.
    pub published: u64,
    /// No message will be offered beyond `published` (the publisher is
    /// gone and the backlog is empty, or the subscription ended).
    pub ended: bool,
}

/// [`Queue::attach_ring`] and [`Queue::wait_ring`]: the queue has a ring
/// already, has none, or its subscription ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RingRefused {
    /// The subscription has a ring already.
    #[error("the subscription has a ring already")]
    HasRing,
    /// The subscription has no ring.
    #[error("the subscription has no ring")]
    NoRing,
    /// The subscription ended.
    #[error("the subscription ended")]
    Left,
}

impl From<RingRefused> for super::PubSubError {
    /// A second ring, or none to wait on, is the caller's mistake; a
    /// subscription that ended under the call is the host's.
    fn from(r: RingRefused) -> Self {
        match r {
            RingRefused::HasRing | RingRefused::NoRing => super::PubSubError::InvalidArgument,
            RingRefused::Left => super::PubSubError::Internal,
        }
    }
}

/// [`Queue::pop_timeout`] found no message within its timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut;

/// What [`Queue::push`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The message is queued.
    Queued,
    /// The subscriber left: nothing was queued, the caller still owns the
    /// handle.
    Left,
    /// The queue stayed full for the whole stall limit: the subscriber
    /// does not keep up. Nothing was queued, the caller still owns the
    /// handle (and may evict the subscriber).
    Stalled,
}

impl Queue {
    /// An empty queue of `owner`'s subscription.
    pub fn new(owner: GuestId) -> Queue {
        Queue::with_overflow(owner, None)
    }

    /// An empty queue of `owner`'s subscription with a policy of its own
    /// for a full queue (`None`: the host's, as [`Queue::new`]).
    pub fn with_overflow(owner: GuestId, overflow: Option<Overflow>) -> Queue {
        Queue {
            owner,
            overflow,
            state: Mutex::default(),
            changed: Condvar::new(),
        }
    }

    /// The guest that subscribed.
    pub fn owner(&self) -> GuestId {
        self.owner
    }

    /// The subscription's own overflow policy, if it has one.
    pub fn own_overflow(&self) -> Option<Overflow> {
        self.overflow
    }

    /// The policy that applies to this queue under a host whose policy is
    /// `host`: the subscription's own, or the host's.
    pub fn overflow(&self, host: Overflow) -> Overflow {
        self.overflow.unwrap_or(host)
    }

    /// Wakes waiting readers and publishers (with the state locked).
    fn wake(&self, s: &mut QueueState) {
        if s.waiting > 0 {
            self.changed.notify_all();
        }
        for w in s.wakers.drain(..) {
            w.wake();
        }
    }

    /// Blocks until woken (or `timeout` passed), counted in `waiting` so
    /// that [`Queue::wake`] knows to notify. The count changes only with
    /// the state locked, as `wake` reads it, so no wake-up is lost.
    fn wait<'a>(
        &self,
        mut s: MutexGuard<'a, QueueState>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, QueueState> {
        s.waiting += 1;
        let mut s = match timeout {
            None => self.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
            Some(t) => {
                self.changed
                    .wait_timeout(s, t)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        s.waiting -= 1;
        s
    }

    /// Queues `handle`, at most `bound` messages deep: when full, waits
    /// (`Block`, at most `stall` in all when given) or drops the oldest
    /// through `drop_handle` (`DropOldest`). `overflow` is the host's
    /// policy: a queue with a policy of its own
    /// ([`Queue::with_overflow`]) follows its own.
    pub fn push(
        &self,
        handle: HandleId,
        bound: usize,
        overflow: Overflow,
        stall: Option<Duration>,
        drop_handle: impl FnMut(HandleId),
    ) -> Pushed {
        self.push_waking(handle, bound, overflow, stall, drop_handle, true)
    }

    /// [`Queue::push`], waking the subscriber only if `wake` (or if the
    /// queue is full and the publisher must wait for it): a publisher
    /// sending a batch wakes each subscriber once, with its last message.
    pub fn push_waking(
        &self,
        handle: HandleId,
        bound: usize,
        overflow: Overflow,
        stall: Option<Duration>,
        mut drop_handle: impl FnMut(HandleId),
        wake: bool,
    ) -> Pushed {
        let overflow = self.overflow(overflow);
        let bound = bound.max(1);
        let deadline = stall.map(|d| Instant::now() + d);
        let mut s = lock(&self.state);
        let mut reconciled = false;
        while s.items.len() >= bound && !s.left {
            match overflow {
                Overflow::Block => {
                    // A ring's subscriber returns messages without a call:
                    // read its returned region, and again every RING_POLL.
                    let poll = if s.ring.is_some() {
                        self.reconcile_locked(&mut s, &mut drop_handle);
                        if s.items.len() < bound {
                            continue;
                        }
                        Some(RING_POLL)
                    } else {
                        None
                    };
                    let now = Instant::now();
                    let left = match deadline {
                        Some(deadline) if now >= deadline => return Pushed::Stalled,
                        Some(deadline) => Some(deadline - now),
                        None => None,
                    };
                    let timeout = match (left, poll) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    // The subscriber must run to make room.
                    self.wake(&mut s);
                    s = self.wait(s, timeout);
                }
                Overflow::DropOldest => {
                    // The ring may have room again: never drop what it can
                    // still offer.
                    if s.ring.is_some() && !reconciled {
                        reconciled = true;
                        self.reconcile_locked(&mut s, &mut drop_handle);
                        continue;
                    }
                    let oldest = s.items.pop_front().expect("the queue is full");
                    s.dropped += 1;
                    drop_handle(oldest);
                }
            }
        }
        if s.left {
            return Pushed::Left;
        }
        s.items.push_back(handle);
        if !self.pump(&mut s, &mut drop_handle) && s.ring.is_some() {
            // The ring is full: its subscriber may have returned messages
            // without a call (one load of the returned count if not).
            self.reconcile_locked(&mut s, &mut drop_handle);
        }
        if wake {
            self.wake(&mut s);
        }
        Pushed::Queued
    }

    /// Moves queued messages into the ring while it has room (with the
    /// state locked); a message of another pool is dropped through
    /// `drop_handle` and counted. Returns whether anything moved.
    fn pump(&self, s: &mut QueueState, drop_handle: &mut impl FnMut(HandleId)) -> bool {
        let QueueState {
            items,
            ring,
            dropped,
            ..
        } = s;
        let Some(ring) = ring.as_mut() else {
            return false;
        };
        let mut moved = false;
        while ring.has_room() {
            let Some(h) = items.pop_front() else {
                break;
            };
            moved = true;
            match ring.offer(h) {
                Offered::Offered => {}
                Offered::Full(h) => {
                    items.push_front(h);
                    break;
                }
                Offered::Foreign(h) => {
                    *dropped += 1;
                    drop_handle(h);
                }
            }
        }
        moved
    }

    /// Reads the ring's returned region and refills the ring from the
    /// backlog (with the state locked). The released handles go through
    /// `drop_handle`; returns how many.
    fn reconcile_locked(
        &self,
        s: &mut QueueState,
        drop_handle: &mut impl FnMut(HandleId),
    ) -> usize {
        let released = match s.ring.as_mut() {
            Some(ring) => ring.reconcile(),
            None => return 0,
        };
        let n = released.len();
        for h in released {
            drop_handle(h);
        }
        if self.pump(s, drop_handle) || n > 0 {
            self.wake(s);
        }
        n
    }

    /// Makes `ring` this subscription's lease ring: queued messages (and
    /// every message published from now on) move into it while it has
    /// room. Messages of another pool are dropped through `drop_handle`.
    pub fn attach_ring(
        &self,
        ring: RingStage,
        mut drop_handle: impl FnMut(HandleId),
    ) -> Result<(), (RingRefused, RingStage)> {
        let mut s = lock(&self.state);
        if s.left {
            return Err((RingRefused::Left, ring));
        }
        if s.ring.is_some() {
            return Err((RingRefused::HasRing, ring));
        }
        s.ring = Some(ring);
        if self.pump(&mut s, &mut drop_handle) {
            self.wake(&mut s);
        }
        Ok(())
    }

    /// Reads the ring's returned region (messages the subscriber
    /// released) and refills the ring from the backlog. The released
    /// handles, and messages of another pool, are dropped through
    /// `drop_handle` (with the queue locked); returns how many were
    /// released (0 without a ring).
    pub fn reconcile(&self, mut drop_handle: impl FnMut(HandleId)) -> usize {
        let mut s = lock(&self.state);
        self.reconcile_locked(&mut s, &mut drop_handle)
    }

    /// The subscriber's wait: reconciles the ring, then waits (at most
    /// `timeout`) until it offered more than `seen` messages or ended.
    /// Released handles are dropped through `drop_handle`, with the queue
    /// locked (the ledger may be locked inside).
    pub fn wait_ring(
        &self,
        seen: u64,
        timeout: Duration,
        mut drop_handle: impl FnMut(HandleId),
    ) -> Result<RingWaited, RingRefused> {
        let deadline = Instant::now() + timeout;
        let mut s = lock(&self.state);
        loop {
            self.reconcile_locked(&mut s, &mut drop_handle);
            let ended = (s.closed && s.items.is_empty()) || s.left;
            let Some(ring) = s.ring.as_mut() else {
                return Err(RingRefused::NoRing);
            };
            let published = ring.published();
            if ended {
                ring.close();
            }
            if published > seen || ended {
                return Ok(RingWaited { published, ended });
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(RingWaited { published, ended });
            }
            s = self.wait(s, Some(deadline - now));
        }
    }

    /// Does the ring hold (offered, not returned) a message for which
    /// `pred` holds?
    pub fn in_ring(&self, pred: impl FnMut(HandleId) -> bool) -> bool {
        lock(&self.state)
            .ring
            .as_ref()
            .is_some_and(|r| r.holds(pred))
    }

    /// The ring's counts: offered so far, held now, returned values
    /// refused; `None` without a ring.
    pub fn ring_counts(&self) -> Option<(u64, usize, u64)> {
        let s = lock(&self.state);
        let r = s.ring.as_ref()?;
        Some((r.published(), r.held(), r.refused()))
    }

    /// Wakes whoever waits on this queue (after messages were pushed
    /// without waking: [`Queue::push_waking`]).
    pub fn wake_waiters(&self) {
        self.wake(&mut lock(&self.state));
    }

    /// Removes the queued messages for which `pred` holds, counting them as
    /// dropped (the `DropOldest` policy applied to a pool that ran dry), and
    /// returns them for the caller to drop.
    pub fn drop_queued(&self, mut pred: impl FnMut(HandleId) -> bool) -> Vec<HandleId> {
        let mut s = lock(&self.state);
        let mut out = Vec::new();
        s.items.retain(|&h| {
            let hit = pred(h);
            if hit {
                out.push(h);
            }
            !hit
        });
        s.dropped += out.len() as u64;
        if !out.is_empty() {
            self.wake(&mut s);
        }
        out
    }

    /// How many queued handles `pred` holds for.
    pub fn count(&self, mut pred: impl FnMut(HandleId) -> bool) -> usize {
        lock(&self.state).items.iter().filter(|&&h| pred(h)).count()
    }

    /// Is a message for which `pred` holds queued?
    pub fn holds(&self, mut pred: impl FnMut(HandleId) -> bool) -> bool {
        lock(&self.state).items.iter().any(|&h| pred(h))
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
            s = self.wait(s, None);
        }
    }

    /// The next message, waiting at most `timeout` for one: `Ok(None)` once
    /// the publisher is gone (or the subscription left) and the queue is
    /// empty, `Err(TimedOut)` when nothing arrived in time.
    pub fn pop_timeout(&self, timeout: Duration) -> Result<Option<HandleId>, TimedOut> {
        let deadline = Instant::now() + timeout;
        let mut s = lock(&self.state);
        loop {
            if let Some(h) = self.take(&mut s) {
                return Ok(Some(h));
            }
            if s.closed || s.left {
                return Ok(None);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(TimedOut);
            }
            s = self.wait(s, Some(deadline - now));
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

/// Pooled messages one subscription may hold at once by default (taken and
/// not released): a held message keeps its block from the publisher, so
/// the bound is what lets a pool be sized for its subscribers.
pub const MAX_HELD: u32 = 4;

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
        // A pool the last publisher left for draining is not this one's.
        t.pool = None;
        for q in &t.queues {
            q.set_closed(false);
        }
        true
    }

    /// Offers the publisher's pool for mapping (after
    /// [`Topic::open_publisher`]). It stays offered after the publisher
    /// closes, so that subscribers can still map it to read the messages
    /// queued for them, until [`Topic::withdraw_pool`] (once they are
    /// taken) or the next publisher opens.
    pub fn share_pool(&self, pool: Arc<SharedPool>) {
        lock(&self.state).pool = Some(pool);
    }

    /// The pool of the topic's publisher, if it shares it.
    pub fn pool(&self) -> Option<Arc<SharedPool>> {
        lock(&self.state).pool.clone()
    }

    /// Withdraws `pool` if it is the one offered.
    pub fn withdraw_pool(&self, pool: &Arc<SharedPool>) {
        let mut t = lock(&self.state);
        if t.pool.as_ref().is_some_and(|p| Arc::ptr_eq(p, pool)) {
            t.pool = None;
        }
    }

    /// The publisher is gone: readers end once their queues are empty.
    /// Its pool stays offered (see [`Topic::share_pool`]).
    pub fn close_publisher(&self) {
        let mut t = lock(&self.state);
        t.publisher = false;
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

    /// Reconciles the lease rings of every subscription (the publisher
    /// needs blocks back), dropping through `drop_handle`
    /// ([`Queue::reconcile`]); returns how many messages were released.
    pub fn reconcile_rings(&self, mut drop_handle: impl FnMut(HandleId)) -> usize {
        self.queues()
            .iter()
            .map(|q| q.reconcile(&mut drop_handle))
            .sum()
    }

    /// Ends the subscription `queue`: no more messages are queued to it,
    /// a publisher waiting for space in it goes on, and the handles still
    /// queued are returned for the caller to drop.
    pub fn leave(&self, queue: &Arc<Queue>) -> Vec<HandleId> {
        lock(&self.state).queues.retain(|q| !Arc::ptr_eq(q, queue));
        let mut s = lock(&queue.state);
        s.left = true;
        let mut queued: Vec<HandleId> = s.items.drain(..).collect();
        if let Some(ring) = s.ring.as_mut() {
            queued.extend(ring.drain());
        }
        queue.wake(&mut s);
        queued
    }
}

/// The topics of one host (or one native process). A topic lives while
/// a member (publisher, subscription, a draining pool) holds it, and is
/// forgotten once the last one is gone: names that guests make up and
/// leave take no memory for good.
#[derive(Default)]
pub struct Topics {
    topics: Mutex<TopicMap>,
    subscriptions: AtomicUsize,
    /// The last [`ENDED_KEPT`] topics whose publisher ended, kept alive so
    /// that a late subscription still ends at once instead of waiting for
    /// a publisher that is gone (bounded: names cost no memory for good).
    ended: Mutex<VecDeque<Arc<Topic>>>,
}

/// How many ended topics [`Topics`] keeps for late subscribers.
pub const ENDED_KEPT: usize = 1024;

#[derive(Default)]
struct TopicMap {
    by_name: HashMap<String, Weak<Topic>>,
    /// Forgotten names are swept out when the map reaches this size (twice
    /// the live topics after the last sweep): amortized O(1) per lookup.
    sweep_at: usize,
}

impl Topics {
    /// The topic called `name`, created on first use (or again after its
    /// last member left). Check the name first
    /// ([`crate::guest_text::check_topic_name`]).
    pub fn topic(&self, name: &str) -> Arc<Topic> {
        let mut map = lock(&self.topics);
        if let Some(topic) = map.by_name.get(name).and_then(Weak::upgrade) {
            return topic;
        }
        let topic = Arc::new(Topic::default());
        map.by_name.insert(name.to_string(), Arc::downgrade(&topic));
        if map.by_name.len() >= map.sweep_at {
            map.by_name.retain(|_, t| t.strong_count() > 0);
            map.sweep_at = (2 * map.by_name.len()).max(64);
        }
        topic
    }

    /// Keeps `topic`, whose publisher just ended, for late subscribers
    /// (the oldest of [`ENDED_KEPT`] goes).
    pub fn keep_ended(&self, topic: Arc<Topic>) {
        let mut ended = lock(&self.ended);
        ended.retain(|t| !Arc::ptr_eq(t, &topic));
        ended.push_back(topic);
        if ended.len() > ENDED_KEPT {
            ended.pop_front();
        }
    }

    /// How many topics are alive (have a member).
    pub fn live(&self) -> usize {
        lock(&self.topics)
            .by_name
            .values()
            .filter(|t| t.strong_count() > 0)
            .count()
    }

    /// How many names the map holds, forgotten ones not yet swept included
    /// (at most about twice [`Topics::live`], and at least 64).
    pub fn remembered(&self) -> usize {
        lock(&self.topics).by_name.len()
    }

    /// A new subscription of `owner` to `topic`: it receives what is
    /// published from now on (and ends at once if the topic's publisher
    /// already ended).
    pub fn subscribe(&self, topic: &Topic, owner: GuestId) -> Arc<Queue> {
        self.subscribe_with_overflow(topic, owner, None)
    }

    /// A new subscription as [`Topics::subscribe`], whose full queue
    /// follows `overflow` whatever the host's policy (`None`: the host's).
    /// A recorder subscribes with [`Overflow::DropOldest`]: it loses its own
    /// oldest messages rather than slow the publisher, is never waited for
    /// and never evicted for a full queue.
    pub fn subscribe_with_overflow(
        &self,
        topic: &Topic,
        owner: GuestId,
        overflow: Option<Overflow>,
    ) -> Arc<Queue> {
        let mut t = lock(&topic.state);
        let queue = Arc::new(Queue::with_overflow(owner, overflow));
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
    fn topics_are_forgotten_when_their_last_member_leaves() {
        let topics = Topics::default();
        let kept = topics.topic("kept");
        for i in 0..10_000 {
            let t = topics.topic(&format!("made-up-{i}"));
            let q = topics.subscribe(&t, GuestId(1));
            drop(t.leave(&q));
        }
        assert_eq!(topics.live(), 1);
        assert!(topics.remembered() <= 128, "{}", topics.remembered());
        // A topic whose publisher ended is kept (up to ENDED_KEPT of them):
        // a late subscription ends at once.
        let t = topics.topic("ended");
        assert!(t.open_publisher());
        t.close_publisher();
        topics.keep_ended(t);
        let late = topics.subscribe(&topics.topic("ended"), GuestId(2));
        assert!(late.is_finished());
        for i in 0..ENDED_KEPT + 10 {
            let t = topics.topic(&format!("gone-{i}"));
            assert!(t.open_publisher());
            t.close_publisher();
            topics.keep_ended(t);
        }
        assert!(topics.live() <= ENDED_KEPT + 2, "{}", topics.live());
        // A topic with a member is the same topic on every lookup.
        assert!(Arc::ptr_eq(&kept, &topics.topic("kept")));
    }

    #[test]
    fn drop_oldest_drops_and_counts() {
        let topics = Topics::default();
        let t = topics.topic("t");
        assert!(t.open_publisher());
        assert!(!t.open_publisher());
        let q = topics.subscribe(&t, GuestId(9));
        let mut dropped = Vec::new();
        for i in 1..=3 {
            assert_eq!(
                Pushed::Queued,
                q.push(HandleId(i), 2, Overflow::DropOldest, None, |h| dropped
                    .push(h))
            );
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
    fn a_queue_with_its_own_policy_follows_it() {
        let topics = Topics::default();
        let t = topics.topic("t");
        let own = topics.subscribe_with_overflow(&t, GuestId(3), Some(Overflow::DropOldest));
        let host = topics.subscribe(&t, GuestId(4));
        assert_eq!(own.own_overflow(), Some(Overflow::DropOldest));
        assert_eq!(host.own_overflow(), None);
        assert_eq!(host.overflow(Overflow::Block), Overflow::Block);
        let mut dropped = Vec::new();
        // Under the host's `block`, the full queue with its own
        // `drop-oldest` drops at once instead of waiting (no stall limit
        // given: a wait would never end).
        for i in 1..=3 {
            assert_eq!(
                own.push(HandleId(i), 2, Overflow::Block, None, |h| dropped.push(h)),
                Pushed::Queued
            );
        }
        assert_eq!(dropped, [HandleId(1)]);
        assert_eq!(own.dropped(), 1);
        // The other queue still follows the host's policy.
        assert_eq!(
            host.push(HandleId(9), 1, Overflow::Block, None, |_| {}),
            Pushed::Queued
        );
        let limit = Some(Duration::from_millis(10));
        assert_eq!(
            host.push(HandleId(10), 1, Overflow::Block, limit, |_| {}),
            Pushed::Stalled
        );
    }

    #[test]
    fn pop_timeout_times_out_then_ends() {
        let topics = Topics::default();
        let t = topics.topic("t");
        assert!(t.open_publisher());
        let q = topics.subscribe(&t, GuestId(9));
        assert_eq!(q.pop_timeout(Duration::from_millis(1)), Err(TimedOut));
        q.push(HandleId(4), 2, Overflow::Block, None, |_| {});
        assert_eq!(q.pop_timeout(Duration::ZERO), Ok(Some(HandleId(4))));
        t.close_publisher();
        assert_eq!(q.pop_timeout(Duration::from_secs(60)), Ok(None));
    }

    #[test]
    fn unpop_and_shared_pools() {
        let topics = Topics::default();
        let t = topics.topic("t");
        let q = topics.subscribe(&t, GuestId(9));
        assert_eq!(
            Pushed::Queued,
            q.push(HandleId(1), 4, Overflow::Block, None, |_| {})
        );
        assert_eq!(
            Pushed::Queued,
            q.push(HandleId(2), 4, Overflow::Block, None, |_| {})
        );
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
        assert!(
            Arc::ptr_eq(&t.pool().unwrap(), &pool),
            "a closed publisher's pool stays for its queued messages"
        );
        t.withdraw_pool(&Arc::new(SharedPool {
            blocks: vec![],
            element_size: 10,
        }));
        assert!(t.pool().is_some(), "only the pool itself is withdrawn");
        t.withdraw_pool(&pool);
        assert!(t.pool().is_none());
        t.share_pool(pool);
        assert!(t.open_publisher());
        assert!(t.pool().is_none(), "a new publisher shares its own pool");
    }

    #[test]
    fn a_full_queue_blocks_until_read_or_left() {
        let topics = Topics::default();
        let t = topics.topic("t");
        let q = topics.subscribe(&t, GuestId(9));
        assert_eq!(
            Pushed::Queued,
            q.push(HandleId(1), 1, Overflow::Block, None, |_| {})
        );
        std::thread::scope(|s| {
            let pusher = s.spawn(|| q.push(HandleId(2), 1, Overflow::Block, None, |_| {}));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!pusher.is_finished(), "the second push waits for space");
            assert_eq!(q.try_pop(), Some(HandleId(1)));
            assert_eq!(pusher.join().unwrap(), Pushed::Queued);
        });
        let pusher_left = std::thread::scope(|s| {
            let pusher = s.spawn(|| q.push(HandleId(3), 1, Overflow::Block, None, |_| {}));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(t.leave(&q), [HandleId(2)]);
            pusher.join().unwrap()
        });
        assert_eq!(
            pusher_left,
            Pushed::Left,
            "a push to a subscription that left queues nothing"
        );
        assert_eq!(topics.subscriptions(), 1);
        assert_eq!(t.subscriber_count(), 0);
    }

    #[test]
    fn a_stalled_subscriber_is_reported_after_the_stall_limit() {
        let topics = Topics::default();
        let t = topics.topic("t");
        let q = topics.subscribe(&t, GuestId(4));
        assert_eq!(q.owner(), GuestId(4));
        let limit = Some(std::time::Duration::from_millis(30));
        assert_eq!(
            q.push(HandleId(1), 1, Overflow::Block, limit, |_| {}),
            Pushed::Queued
        );
        let started = Instant::now();
        assert_eq!(
            q.push(HandleId(2), 1, Overflow::Block, limit, |_| {}),
            Pushed::Stalled
        );
        assert!(started.elapsed() >= std::time::Duration::from_millis(30));
        // Reclaiming under drop-oldest takes queued messages out, counted.
        assert!(q.holds(|h| h == HandleId(1)));
        assert_eq!(q.drop_queued(|h| h == HandleId(1)), [HandleId(1)]);
        assert_eq!(q.dropped(), 1);
        assert!(!q.holds(|h| h == HandleId(1)));
    }
}
