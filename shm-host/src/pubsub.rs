//! The `pub-sub` interface: topics, a publisher's pool of blocks, and one
//! bounded queue per subscription.
//!
//! Every message is a block of the publisher's pool. Publishing makes one
//! read-only clone of it per subscription (a ledger handle, no bytes) and
//! queues it; `next` moves the clone to the subscriber's store. A pool block
//! is free again when no handle but the pool's own names it: that is, when
//! every subscriber dropped its clone (or trapped, or left). Nothing here
//! needs a callback from the drops: `allocate` asks the ledger.
//!
//! Pooled topics (`publisher.pooled`): a subscriber maps every block of the
//! pool once, read-only ([`Access::Pool`] attachments of handles the
//! subscription holds), and each message is then attached in place
//! ([`crate::ShmCtx::attach_in_pool`]) and kept under a lease until
//! `release`: no mapping per message.
//!
//! Isolation: only guests granted a topic ([`crate::Grants`]) publish or
//! subscribe to it; `publish` takes the block's only write right; a
//! subscriber that stalls its topic is evicted ([`ShmHost::evict`]): one
//! that leaves a full queue untaken for [`PubSubConfig::stall_limit`] (the
//! publisher waits no longer than that), or that still holds (or has
//! queued) a message the publisher needs back, published longer than that
//! ago. Under the `drop-oldest` policy a queued message the publisher needs
//! back is dropped from that subscriber's queue instead.
//!
//! Lock order: topic, then queue, then the ledger (inside [`ShmHost`]).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use shm_rules::guest_text::{check_topic_name, Shown};
use shm_rules::queue::{Pushed, Queue, SharedPool, Topic, Topics};
use shm_rules::IdMap;
use wasmtime::component::{
    Destination, Linker, Resource, ResourceTable, ResourceType, StreamProducer, StreamReader,
    StreamResult,
};
use wasmtime::StoreContextMut;

use crate::bindings::exchange::Error;
use crate::bindings::pub_sub::{PooledLoan, PooledMessage, PubSubError};
use crate::rules::{Access, BackingId, GuestId, HandleId};
use crate::{MemoryBlock, ShmCtx, ShmHost};

pub use shm_rules::queue::Overflow;

/// Publish/subscribe settings of a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PubSubConfig {
    /// Messages queued per subscription at most.
    pub queue: usize,
    /// The policy for a full queue.
    pub overflow: Overflow,
    /// Blocks in one publisher's pool at most.
    pub max_pool: u32,
    /// Subscriptions one guest may hold at once.
    pub max_subscriptions: u32,
    /// Pooled messages one subscription may hold at once (taken and not
    /// released; iceoryx2's `subscriber_max_borrowed_samples`): taking
    /// another fails with `limit-exceeded`. Size a pooled publisher's pool
    /// at least subscribers x `max_held` + 2 so that it never waits for a
    /// subscriber within its bounds.
    pub max_held: u32,
    /// How long a subscriber may keep its topic waiting: leave its full
    /// queue untaken, or hold a message the publisher needs back, before it
    /// is evicted.
    pub stall_limit: Duration,
}

impl Default for PubSubConfig {
    fn default() -> Self {
        PubSubConfig {
            queue: 8,
            overflow: Overflow::Block,
            max_pool: 1024,
            max_subscriptions: 64,
            max_held: shm_rules::queue::MAX_HELD,
            stall_limit: Duration::from_secs(10),
        }
    }
}

/// A subscription as the broker remembers it (it lives in its guest).
type Subscription = (Weak<Topic>, Weak<Queue>);

/// The pool of a closed pooled publisher, kept (and offered for mapping)
/// while messages of it live: a subscriber that had not mapped the pool
/// when the publisher ended must still be able to read what was queued
/// for it.
struct Draining {
    topic: Arc<Topic>,
    shared: Arc<SharedPool>,
}

/// The topics of one host. Pool blocks and queued messages are held by a
/// ledger guest of its own.
pub(crate) struct Broker {
    guest: GuestId,
    config: PubSubConfig,
    topics: Topics,
    /// Each guest's subscriptions, to end them when it is evicted.
    subscribed: Mutex<HashMap<GuestId, Vec<Subscription>>>,
    /// Pools of closed publishers whose messages still live.
    draining: Mutex<Vec<Draining>>,
    /// `draining.len()`, read without the lock on every take.
    draining_count: AtomicUsize,
}

impl Broker {
    pub(crate) fn new(guest: GuestId, config: PubSubConfig) -> Broker {
        Broker {
            guest,
            config,
            topics: Topics::default(),
            subscribed: Mutex::default(),
            draining: Mutex::default(),
            draining_count: AtomicUsize::new(0),
        }
    }

    pub(crate) fn subscriptions(&self) -> usize {
        self.topics.subscriptions()
    }

    /// A new subscription of `guest` to `topic`, within its limit.
    fn subscribe(&self, guest: GuestId, topic: &Arc<Topic>) -> Result<Arc<Queue>, PubSubError> {
        let mut subscribed = self.subscribed.lock().unwrap_or_else(|e| e.into_inner());
        let mine = subscribed.entry(guest).or_default();
        mine.retain(|(_, q)| q.strong_count() > 0);
        if mine.len() >= self.config.max_subscriptions as usize {
            return Err(PubSubError::LimitExceeded);
        }
        let queue = self.topics.subscribe(topic, guest);
        mine.push((Arc::downgrade(topic), Arc::downgrade(&queue)));
        Ok(queue)
    }

    /// Keeps a closed publisher's pool while messages of it live (see
    /// [`Draining`]); drops its handles once none does.
    fn drain(&self, host: &ShmHost, topic: Arc<Topic>, shared: Arc<SharedPool>) {
        let mut draining = self.draining.lock().unwrap_or_else(|e| e.into_inner());
        draining.push(Draining { topic, shared });
        self.sweep_locked(host, &mut draining);
    }

    /// Drops the handles of draining pools no message of which lives.
    pub(crate) fn sweep(&self, host: &ShmHost) {
        if self.draining_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut draining = self.draining.lock().unwrap_or_else(|e| e.into_inner());
        self.sweep_locked(host, &mut draining);
    }

    fn sweep_locked(&self, host: &ShmHost, draining: &mut Vec<Draining>) {
        draining.retain(|d| {
            // A pool handle is the only handle of its block unless a message
            // of it lives (queued, being taken, read) or a subscriber still
            // maps it.
            let live = d
                .shared
                .blocks
                .iter()
                .any(|&h| host.handles_of_block(h) > 1);
            if !live {
                d.topic.withdraw_pool(&d.shared);
                for &h in &d.shared.blocks {
                    host.drop_detached(h);
                }
            }
            live
        });
        self.draining_count.store(draining.len(), Ordering::Relaxed);
    }

    /// Ends every subscription of `guest`; returns the messages that were
    /// queued for it, to drop.
    pub(crate) fn leave_all(&self, guest: GuestId) -> Vec<HandleId> {
        let mine = self
            .subscribed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&guest)
            .unwrap_or_default();
        let mut queued = Vec::new();
        for (topic, queue) in mine {
            if let (Some(t), Some(q)) = (topic.upgrade(), queue.upgrade()) {
                queued.extend(t.leave(&q));
            }
        }
        queued
    }
}

/// The host type behind the WIT resource `publisher`.
pub struct Publisher {
    host: ShmHost,
    name: String,
    pub(crate) topic: Arc<Topic>,
    /// The pool, held by the broker's guest.
    pool: Vec<HandleId>,
    /// Each pool block's backing, in pool order (to find a block's index
    /// without asking the ledger).
    backings: Vec<BackingId>,
    /// Where the search for a free block starts: after the block lent
    /// last, so that in a steady stream the first block looked at is free.
    cursor: usize,
    /// When each pool block was last published (`None` once allocated).
    published: Vec<Option<Instant>>,
    /// The publisher's own mapping of its pool (`publisher.map-pool`):
    /// read-only pool mappings, held by the publisher's guest, written
    /// through write windows (see [`crate::os::windows`]).
    mapped: Vec<HandleId>,
    /// Blocks lent for writing with `loan`, attached, by loan.
    loans: IdMap<u64, HandleId>,
    /// The pool as offered to subscribers (a pooled publisher).
    shared: Option<Arc<SharedPool>>,
}

/// The host type behind the WIT resource `subscriber`.
pub struct Subscriber {
    host: ShmHost,
    topic: Arc<Topic>,
    pub(crate) queue: Arc<Queue>,
    /// The pool mapped in the subscriber's memory (pooled topics).
    mapped: Option<MappedPool>,
    /// Messages taken with `next-pooled` and not yet released, by lease.
    leases: IdMap<u64, HandleId>,
}

/// A pool mapped into a subscriber: one read-only pool mapping per block.
struct MappedPool {
    pool: Arc<SharedPool>,
    /// The mapping handles, held by the subscriber's guest.
    maps: Vec<HandleId>,
    /// Each block's mapping handle.
    backings: IdMap<BackingId, HandleId>,
}

impl Subscriber {
    pub(crate) fn new(ctx: &ShmCtx, topic: Arc<Topic>) -> Result<Subscriber, PubSubError> {
        let host = ctx.host().clone();
        let queue = host.broker().subscribe(ctx.guest(), &topic)?;
        Ok(Subscriber {
            host,
            topic,
            queue,
            mapped: None,
            leases: IdMap::default(),
        })
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.topic.close_publisher();
        self.host.broker().topics.keep_ended(self.topic.clone());
        // Loans end unpublished (their writes commit nothing), before the
        // mapping their windows lie in.
        for (_, h) in self.loans.drain() {
            self.host.drop_anywhere(h);
        }
        for &h in &self.mapped {
            self.host.drop_anywhere(h);
        }
        // Blocks still queued or read stay alive through their clones; a
        // shared pool stays mappable while they do.
        match self.shared.take() {
            Some(shared) => self
                .host
                .broker()
                .drain(&self.host, self.topic.clone(), shared),
            None => {
                for &h in &self.pool {
                    self.host.drop_detached(h);
                }
            }
        }
        tracing::debug!(topic = %self.name, "publisher closed");
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        for h in self.topic.leave(&self.queue) {
            self.host.drop_detached(h);
        }
        // Messages first, then the pool mapping they lie in.
        for (_, h) in self.leases.drain() {
            self.host.drop_anywhere(h);
        }
        for h in self.mapped.take().map(|m| m.maps).unwrap_or_default() {
            self.host.drop_anywhere(h);
        }
        self.host.broker().sweep(&self.host);
    }
}

/// What the `pub-sub` host functions need: the store's block context and
/// its resource table.
pub struct PubSubView<'a> {
    /// The store's memory-block context.
    pub ctx: &'a mut ShmCtx,
    /// The store's resource table.
    pub table: &'a mut ResourceTable,
}

impl PubSubView<'_> {
    pub(crate) fn broker(&self) -> &Broker {
        self.ctx.host().broker()
    }

    /// A subscription of the caller's guest to `topic`, if granted.
    pub(crate) fn new_subscriber(&mut self, topic: &str) -> Result<Subscriber, PubSubError> {
        if let Err(e) = check_topic_name(topic) {
            self.ctx
                .refused(format_args!("subscribing to {}: {e}", Shown(topic)));
            return Err(PubSubError::InvalidArgument);
        }
        if !self.ctx.grants().may_subscribe(topic) {
            self.ctx.refused(format_args!(
                "not permitted to subscribe to {}",
                Shown(topic)
            ));
            return Err(PubSubError::NotPermitted);
        }
        let topic = self.broker().topics.topic(topic);
        Subscriber::new(self.ctx, topic)
    }

    pub(crate) fn new_publisher(
        &mut self,
        topic: String,
        elements: u32,
        size: u32,
        pooled: bool,
    ) -> Result<Publisher, PubSubError> {
        let host = self.ctx.host().clone();
        let broker = host.broker();
        if let Err(e) = check_topic_name(&topic) {
            self.ctx
                .refused(format_args!("publishing to {}: {e}", Shown(&topic)));
            return Err(PubSubError::InvalidArgument);
        }
        if !self.ctx.grants().may_publish(&topic) {
            self.ctx.refused(format_args!(
                "not permitted to publish to {}",
                Shown(&topic)
            ));
            return Err(PubSubError::NotPermitted);
        }
        if elements == 0 || elements > broker.config.max_pool || (pooled && size == 0) {
            return Err(PubSubError::InvalidArgument);
        }
        let t = broker.topics.topic(&topic);
        if !t.open_publisher() {
            return Err(PubSubError::TopicTaken);
        }
        let mut publisher = Publisher {
            host: host.clone(),
            name: topic,
            topic: t,
            pool: Vec::with_capacity(elements as usize),
            backings: Vec::with_capacity(elements as usize),
            cursor: 0,
            published: vec![None; elements as usize],
            mapped: Vec::new(),
            loans: IdMap::default(),
            shared: None,
        };
        for _ in 0..elements {
            // Created by (and charged to) the publisher's guest, held by
            // the broker's.
            let h = self
                .ctx
                .create(size)
                .map_err(|_| PubSubError::InvalidArgument)?;
            if self.ctx.give_to(h, broker.guest).is_err() {
                let _ = self.ctx.drop_handle(h);
                return Err(PubSubError::Internal);
            }
            let backing = self.ctx.backing_id(h).map_err(|_| PubSubError::Internal);
            publisher.pool.push(h);
            publisher.backings.push(backing?);
        }
        if pooled {
            let shared = Arc::new(SharedPool {
                blocks: publisher.pool.clone(),
                element_size: size,
            });
            publisher.topic.share_pool(shared.clone());
            publisher.shared = Some(shared);
        }
        tracing::debug!(topic = %publisher.name, elements, size, pooled, "publisher created");
        Ok(publisher)
    }

    fn allocate(
        &mut self,
        this: &Resource<Publisher>,
    ) -> wasmtime::Result<Result<(Resource<MemoryBlock>, u32), PubSubError>> {
        self.ctx.alive()?;
        Ok(match self.lend_free(this)? {
            Ok((lent, valid)) => Ok((self.table.push(MemoryBlock::new(lent))?, valid)),
            Err(e) => Err(e),
        })
    }

    /// A writable handle of a free pool block, held by the caller's guest,
    /// and the block's valid length from its last use.
    pub(crate) fn lend_free(
        &mut self,
        this: &Resource<Publisher>,
    ) -> wasmtime::Result<Result<(HandleId, u32), PubSubError>> {
        let publisher = self.table.get(this)?;
        let host = publisher.host.clone();
        let mut found = free_block(&host, publisher);
        if found.is_none() && self.reclaim(publisher) {
            found = free_block(&host, publisher);
        }
        let Some(index) = found else {
            return Ok(Err(PubSubError::PoolExhausted));
        };
        let publisher = self.table.get_mut(this)?;
        publisher.published[index] = None;
        publisher.cursor = (index + 1) % publisher.pool.len();
        let pool_handle = publisher.pool[index];
        let valid = host.valid_len(pool_handle);
        Ok(match self.ctx.alias(pool_handle) {
            Ok(lent) => Ok((lent, valid)),
            Err(_) => Err(PubSubError::InvalidArgument),
        })
    }

    /// A free pool block attached for writing, held under a loan.
    fn loan(
        &mut self,
        this: &Resource<Publisher>,
    ) -> wasmtime::Result<Result<PooledLoan, PubSubError>> {
        self.ctx.alive()?;
        let lent = match self.lend_free(this)? {
            Ok((lent, _)) => lent,
            Err(e) => return Ok(Err(e)),
        };
        let area = match self.ctx.attach(lent, Access::Write) {
            Ok(area) => area,
            Err(e) => {
                let _ = self.ctx.drop_handle(lent);
                return Ok(Err(match e {
                    Error::NoStorage | Error::AmbiguousMemory => PubSubError::NoStorage,
                    Error::LimitExceeded => PubSubError::LimitExceeded,
                    _ => PubSubError::Internal,
                }));
            }
        };
        self.table.get_mut(this)?.loans.insert(lent.0, lent);
        Ok(Ok(PooledLoan {
            loan: lent.0,
            address: area.address,
            size: area.size,
        }))
    }

    /// Tries `attempt` (`allocate` or `loan`) until it finds a free block:
    /// while the pool is exhausted it waits, woken by the host's handle
    /// drops (a release may have freed a block), for at most `timeout_ms`
    /// and the stall limit; `pool-exhausted` after that. Each try also
    /// reclaims blocks from stalling subscribers, and an evicted caller
    /// stops waiting (it traps at the next try).
    fn within<T>(
        &mut self,
        timeout_ms: u32,
        mut attempt: impl FnMut(&mut Self) -> wasmtime::Result<Result<T, PubSubError>>,
    ) -> wasmtime::Result<Result<T, PubSubError>> {
        let limit = self.broker().config.stall_limit;
        let timeout = Duration::from_millis(timeout_ms.into()).min(limit);
        let host = self.ctx.host().clone();
        let done = host.released().retry(timeout, || match attempt(self) {
            Ok(Err(PubSubError::PoolExhausted)) => None,
            done => Some(done),
        });
        done.unwrap_or(Ok(Err(PubSubError::PoolExhausted)))
    }

    /// Commits and sends a loan; with `next`, lends the next free block.
    fn publish_loan(
        &mut self,
        this: &Resource<Publisher>,
        loan: u64,
        size: u32,
        next: bool,
    ) -> wasmtime::Result<Result<Option<PooledLoan>, PubSubError>> {
        self.ctx.alive()?;
        let Some(&handle) = self.table.get(this)?.loans.get(&loan) else {
            return Ok(Err(PubSubError::UnknownLease));
        };
        if self.ctx.size(handle).map_or(true, |block| size > block) {
            // Past the block: the attachment and the loan stay.
            return Ok(Err(PubSubError::InvalidArgument));
        }
        self.table.get_mut(this)?.loans.remove(&loan);
        if self.ctx.detach(handle, size).is_err() {
            // Revoked or evicted meanwhile: the loan ends unsent.
            let _ = self.ctx.drop_handle(handle);
            return Ok(Err(PubSubError::Internal));
        }
        if let Err(e) = self.send(this, handle)? {
            return Ok(Err(e));
        }
        if !next {
            return Ok(Ok(None));
        }
        // The message is sent: a next loan that cannot be made now is
        // `none`, and `loan` reports why (the guest may have to donate
        // storage for a block outside its write windows).
        Ok(Ok(self.loan(this)?.ok()))
    }

    /// Ends a loan unpublished.
    fn drop_loan(
        &mut self,
        this: &Resource<Publisher>,
        loan: u64,
    ) -> wasmtime::Result<Result<(), PubSubError>> {
        Ok(match self.table.get_mut(this)?.loans.remove(&loan) {
            Some(h) => self.ctx.drop_handle(h).map_err(|_| PubSubError::Internal),
            None => Err(PubSubError::UnknownLease),
        })
    }

    /// Frees pool blocks that stalling subscribers keep from the
    /// publisher (see the module's notes). Returns whether it did anything.
    fn reclaim(&self, publisher: &Publisher) -> bool {
        let host = &publisher.host;
        let broker = host.broker();
        let stall = broker.config.stall_limit;
        let now = Instant::now();
        let mut acted = false;
        // Under `drop-oldest` a queued message is the subscriber's to lose,
        // at once: the oldest published block that only queues still hold
        // (no subscriber is reading it) is dropped from them, so that a
        // slow subscriber (its queue full of messages it has not taken)
        // never makes the publisher wait. A block someone still reads is
        // left alone (dropping its queued copies would free nothing), and
        // held messages are bounded per subscription (`max_held`) and
        // reclaimed past the stall limit below.
        if broker.config.overflow == Overflow::DropOldest {
            let mut published: Vec<(Instant, usize)> = publisher
                .published
                .iter()
                .enumerate()
                .filter_map(|(i, at)| at.map(|at| (at, i)))
                .collect();
            published.sort_unstable();
            for (_, i) in published {
                let pool_handle = publisher.pool[i];
                let Ok(backing) = self.ctx.backing_id(pool_handle) else {
                    continue;
                };
                let of_block = |h: HandleId| self.ctx.backing_id(h).ok() == Some(backing);
                let queues = publisher.topic.queues();
                let queued: usize = queues.iter().map(|q| q.count(of_block)).sum();
                if queued == 0 || host.handles_of_block(pool_handle) != 1 + queued {
                    continue;
                }
                for q in queues {
                    for h in q.drop_queued(of_block) {
                        host.drop_detached(h);
                    }
                }
                if host.handles_of_block(pool_handle) == 1 {
                    return true;
                }
                acted = true;
            }
        }
        for (i, &pool_handle) in publisher.pool.iter().enumerate() {
            let stale = publisher.published[i].is_some_and(|at| now - at >= stall);
            if !stale || host.handles_of_block(pool_handle) == 1 {
                continue;
            }
            let Ok(backing) = self.ctx.backing_id(pool_handle) else {
                continue;
            };
            let of_block = |h: HandleId| self.ctx.backing_id(h).ok() == Some(backing);
            for q in publisher.topic.queues() {
                match broker.config.overflow {
                    Overflow::DropOldest => {
                        for h in q.drop_queued(of_block) {
                            host.drop_detached(h);
                            acted = true;
                        }
                    }
                    Overflow::Block => {
                        if q.holds(of_block) {
                            let reason = format!(
                                "did not take a message of topic `{}` within the stall limit of {stall:?}",
                                publisher.name
                            );
                            acted |= host.evict(q.owner(), reason);
                        }
                    }
                }
            }
            for holder in host.holders(pool_handle) {
                if holder != broker.guest && holder != self.ctx.guest() {
                    let reason = format!(
                        "held a message of topic `{}` for longer than the stall limit of {stall:?}",
                        publisher.name
                    );
                    acted |= host.evict(holder, reason);
                }
            }
        }
        acted
    }

    fn publish(
        &mut self,
        this: &Resource<Publisher>,
        block: Resource<MemoryBlock>,
    ) -> wasmtime::Result<Result<(), PubSubError>> {
        self.ctx.alive()?;
        let handle = self.table.delete(block)?.handle();
        self.send(this, handle)
    }

    /// Sends `handle`, a detached handle of a pool block held by the
    /// caller's guest, to every subscription; consumes it either way.
    pub(crate) fn send(
        &mut self,
        this: &Resource<Publisher>,
        handle: HandleId,
    ) -> wasmtime::Result<Result<(), PubSubError>> {
        let publisher = self.table.get(this)?;
        let host = publisher.host.clone();
        let verdict = (|| {
            let backing = self
                .ctx
                .backing_id(handle)
                .map_err(|_| PubSubError::Internal)?;
            let index = publisher
                .backings
                .iter()
                .position(|&b| b == backing)
                .ok_or(PubSubError::ForeignBlock)?;
            if host.is_attached(handle) {
                return Err(PubSubError::StillAttached);
            }
            // The message must not change once published: `handle` must be
            // the only write right besides the pool's own handle (no
            // writable partition, no writable handle kept beside a clone).
            if !host.sole_writer(handle, 1) {
                return Err(PubSubError::NotSoleWriter);
            }
            Ok(index)
        })();
        let index = match verdict {
            Ok(i) => i,
            Err(e) => {
                // The block was moved into the call: it goes back (to the
                // pool, or to nothing), detached.
                let _ = self.ctx.drop_handle(handle);
                return Ok(Err(e));
            }
        };
        let pool_handle = publisher.pool[index];
        // The publisher's write right ends before anyone can read.
        let _ = self.ctx.drop_handle(handle);
        let broker = host.broker();
        let (bound, overflow) = (broker.config.queue, broker.config.overflow);
        let stall = Some(broker.config.stall_limit);
        for q in publisher.topic.queues() {
            let Ok(clone) = host.clone_for(pool_handle, broker.guest) else {
                return Ok(Err(PubSubError::Internal));
            };
            match q.push(clone, bound, overflow, stall, |oldest| {
                host.drop_detached(oldest)
            }) {
                Pushed::Queued => {}
                Pushed::Left => host.drop_detached(clone),
                Pushed::Stalled => {
                    host.drop_detached(clone);
                    let reason = format!(
                        "left its full queue of topic `{}` untaken for the stall limit of {:?}",
                        publisher.name, broker.config.stall_limit
                    );
                    host.evict(q.owner(), reason);
                }
            }
        }
        self.table.get_mut(this)?.published[index] = Some(Instant::now());
        Ok(Ok(()))
    }

    fn take(
        &mut self,
        this: &Resource<Subscriber>,
        wait: bool,
    ) -> wasmtime::Result<Option<Resource<MemoryBlock>>> {
        self.ctx.alive()?;
        let queue = self.table.get(this)?.queue.clone();
        let taken = if wait {
            queue.pop_wait()
        } else {
            queue.try_pop()
        };
        // Evicted while waiting: the queue ended, and so does the guest.
        self.ctx.alive()?;
        let Some(handle) = taken else {
            return Ok(None);
        };
        receive(self.ctx, handle)?;
        Ok(Some(self.table.push(MemoryBlock::new(handle))?))
    }

    fn publisher_pool_storage(
        &mut self,
        this: &Resource<Publisher>,
    ) -> wasmtime::Result<Result<u32, PubSubError>> {
        let topic = &self.table.get(this)?.topic;
        Ok(pool_storage(self.ctx, topic))
    }

    /// Maps a pooled publisher's pool into its own storage, read-only, and
    /// keys each block's mapping for a write window where it can.
    fn publisher_map_pool(
        &mut self,
        this: &Resource<Publisher>,
    ) -> wasmtime::Result<Result<(), PubSubError>> {
        self.ctx.alive()?;
        let publisher = self.table.get(this)?;
        if publisher.topic.pool().is_none() {
            return Ok(Err(PubSubError::NotPooled));
        }
        if !publisher.mapped.is_empty() {
            return Ok(Ok(()));
        }
        let maps = match map_blocks(self.ctx, &publisher.pool) {
            Ok(mapped) => mapped.into_iter().map(|(map, _)| map).collect::<Vec<_>>(),
            Err(e) => return Ok(Err(e)),
        };
        let keyed = maps
            .iter()
            .filter(|&&map| crate::os::windows::key_mapping(self.ctx, map))
            .count();
        tracing::debug!(guest = %self.ctx.name(), blocks = maps.len(), keyed, "publisher's pool mapped");
        self.table.get_mut(this)?.mapped = maps;
        Ok(Ok(()))
    }

    fn pool_storage(
        &mut self,
        this: &Resource<Subscriber>,
    ) -> wasmtime::Result<Result<u32, PubSubError>> {
        let topic = &self.table.get(this)?.topic;
        Ok(pool_storage(self.ctx, topic))
    }

    fn map_pool(
        &mut self,
        this: &Resource<Subscriber>,
    ) -> wasmtime::Result<Result<(), PubSubError>> {
        let sub = self.table.get_mut(this)?;
        let Some(pool) = sub.topic.pool() else {
            return Ok(Err(PubSubError::NotPooled));
        };
        if let Some(m) = &sub.mapped {
            if Arc::ptr_eq(&m.pool, &pool) {
                return Ok(Ok(()));
            }
            if !sub.leases.is_empty() {
                return Ok(Err(PubSubError::MessagesHeld));
            }
        }
        for h in sub.mapped.take().map(|m| m.maps).unwrap_or_default() {
            let _ = self.ctx.drop_handle(h);
        }
        let mapped = match map_blocks(self.ctx, &pool.blocks) {
            Ok(mapped) => mapped,
            Err(e) => return Ok(Err(e)),
        };
        let maps: Vec<HandleId> = mapped.iter().map(|&(map, _)| map).collect();
        let backings = mapped.into_iter().map(|(map, b)| (b, map)).collect();
        tracing::debug!(guest = %self.ctx.name(), blocks = maps.len(), "pool mapped");
        sub.mapped = Some(MappedPool {
            pool,
            maps,
            backings,
        });
        Ok(Ok(()))
    }

    fn take_pooled(
        &mut self,
        this: &Resource<Subscriber>,
        wait: bool,
    ) -> wasmtime::Result<Result<Option<PooledMessage>, PubSubError>> {
        self.ctx.alive()?;
        let sub = self.table.get(this)?;
        // A subscriber holds a bounded number of messages: what it holds is
        // out of its publisher's pool until released.
        if sub.leases.len() >= self.broker().config.max_held as usize {
            return Ok(Err(PubSubError::LimitExceeded));
        }
        let queue = sub.queue.clone();
        let taken = if wait {
            queue.pop_wait()
        } else {
            queue.try_pop()
        };
        self.ctx.alive()?;
        let Some(handle) = taken else {
            return Ok(Ok(None));
        };
        let sub = self.table.get_mut(this)?;
        let backing = self.ctx.backing_id(handle);
        let mapping = match (&sub.mapped, backing) {
            (Some(m), Ok(b)) => m.backings.get(&b).copied(),
            _ => None,
        };
        let Some(mapping) = mapping else {
            queue.unpop(handle);
            return Ok(Err(PubSubError::PoolChanged));
        };
        receive(self.ctx, handle)?;
        match self.ctx.attach_in_pool(handle, mapping) {
            Ok(area) => {
                sub.leases.insert(handle.0, handle);
                Ok(Ok(Some(PooledMessage {
                    lease: handle.0,
                    address: area.address,
                    size: area.size,
                })))
            }
            Err(_) => {
                // Only a publisher that kept a writable partition attached
                // gets here: the message is lost to this subscriber.
                let _ = self.ctx.drop_handle(handle);
                Ok(Err(PubSubError::StillAttached))
            }
        }
    }

    /// Releases `lease`, then takes the next message as `take_pooled`.
    fn take_pooled_after(
        &mut self,
        this: &Resource<Subscriber>,
        lease: u64,
        wait: bool,
    ) -> wasmtime::Result<Result<Option<PooledMessage>, PubSubError>> {
        if let Err(e) = self.release(this, lease)? {
            return Ok(Err(e));
        }
        self.take_pooled(this, wait)
    }

    fn release(
        &mut self,
        this: &Resource<Subscriber>,
        lease: u64,
    ) -> wasmtime::Result<Result<(), PubSubError>> {
        let sub = self.table.get_mut(this)?;
        let released = match sub.leases.remove(&lease) {
            Some(h) => self.ctx.drop_handle(h).map_err(|_| PubSubError::Internal),
            None => Err(PubSubError::UnknownLease),
        };
        self.broker().sweep(self.ctx.host());
        Ok(released)
    }
}

/// The index of a free block of `publisher`'s pool (one no handle but the
/// pool's own names), searched from its cursor under one ledger lock.
fn free_block(host: &ShmHost, publisher: &Publisher) -> Option<usize> {
    let ledger = host.ledger();
    let n = publisher.pool.len();
    (0..n)
        .map(|i| (publisher.cursor + i) % n)
        .find(|&i| ledger.handles_of_block(publisher.pool[i]) == Ok(1))
}

/// The donated storage a mapping of `topic`'s whole pool needs
/// (`pool-storage` of publishers and subscribers alike).
fn pool_storage(ctx: &ShmCtx, topic: &Topic) -> Result<u32, PubSubError> {
    let pool = topic.pool().ok_or(PubSubError::NotPooled)?;
    let n = u32::try_from(pool.blocks.len()).unwrap_or(u32::MAX);
    Ok(ctx.optimum_size(n, pool.element_size))
}

/// Maps every block of a pool into `ctx`'s guest once, read-only: a clone
/// of each attached with [`Access::Pool`]. Returns each mapping handle with
/// its block; on any failure drops the mappings made so far.
fn map_blocks(
    ctx: &ShmCtx,
    blocks: &[HandleId],
) -> Result<Vec<(HandleId, BackingId)>, PubSubError> {
    let mut mapped = Vec::with_capacity(blocks.len());
    for &block in blocks {
        let one = ctx.clone_handle(block).and_then(|map| {
            let attached = ctx.attach(map, Access::Pool);
            let backing = attached.and_then(|_| ctx.backing_id(map));
            backing.map(|b| (map, b)).inspect_err(|_| {
                let _ = ctx.drop_handle(map);
            })
        });
        match one {
            Ok(pair) => mapped.push(pair),
            Err(e) => {
                for (map, _) in mapped {
                    let _ = ctx.drop_handle(map);
                }
                return Err(match e {
                    Error::NoStorage | Error::AmbiguousMemory => PubSubError::NoStorage,
                    Error::LimitExceeded => PubSubError::InvalidArgument,
                    _ => PubSubError::Internal,
                });
            }
        }
    }
    Ok(mapped)
}

/// Moves a message taken from a queue (a handle the broker holds) to the
/// subscriber's guest; when its handle limit refuses it, the message is
/// dropped and the call fails (traps).
pub(crate) fn receive(ctx: &ShmCtx, handle: HandleId) -> wasmtime::Result<()> {
    if ctx.adopt_from(handle).is_err() {
        ctx.host().drop_detached(handle);
        wasmtime::bail!("the subscriber's handle limit is exhausted");
    }
    Ok(())
}

/// A subscription's queue as a component-model stream: each read takes the
/// next message (moving its handle into the reading store), or waits for
/// one, or ends the stream once the publisher is gone.
struct QueueStream<T> {
    queue: Arc<Queue>,
    get: fn(&mut T) -> PubSubView<'_>,
}

impl<T: 'static> StreamProducer<T> for QueueStream<T> {
    type Item = Resource<MemoryBlock>;
    type Buffer = Option<Resource<MemoryBlock>>;

    fn poll_produce<'a>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut store: StoreContextMut<'a, T>,
        mut destination: Destination<'a, Self::Item, Self::Buffer>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let handle = match self.queue.poll_pop(cx, finish) {
            Poll::Ready(Some(h)) => h,
            Poll::Ready(None) if finish && !self.queue.is_finished() => {
                return Poll::Ready(Ok(StreamResult::Cancelled))
            }
            Poll::Ready(None) => return Poll::Ready(Ok(StreamResult::Dropped)),
            Poll::Pending => return Poll::Pending,
        };
        let view = (self.get)(store.data_mut());
        receive(view.ctx, handle)?;
        let block = view.table.push(MemoryBlock::new(handle))?;
        destination.set_buffer(Some(block));
        Poll::Ready(Ok(StreamResult::Completed))
    }
}

/// Adds the `zero-copy:shm/pub-sub` interface to `linker`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> PubSubView<'_>,
) -> wasmtime::Result<()> {
    let mut inst = linker.instance(crate::PUB_SUB)?;
    inst.resource(
        "publisher",
        ResourceType::host::<Publisher>(),
        move |mut store, rep| {
            get(store.data_mut())
                .table
                .delete(Resource::<Publisher>::new_own(rep))?;
            Ok(())
        },
    )?;
    inst.resource(
        "subscriber",
        ResourceType::host::<Subscriber>(),
        move |mut store, rep| {
            get(store.data_mut())
                .table
                .delete(Resource::<Subscriber>::new_own(rep))?;
            Ok(())
        },
    )?;
    inst.func_wrap(
        "[constructor]publisher",
        move |mut store, (topic, elements, size): (String, u32, u32)| {
            let mut view = get(store.data_mut());
            Ok((match view.new_publisher(topic, elements, size, false) {
                Ok(p) => Ok(view.table.push(p)?),
                Err(e) => Err(e),
            },))
        },
    )?;
    inst.func_wrap(
        "[static]publisher.pooled",
        move |mut store, (topic, elements, size): (String, u32, u32)| {
            let mut view = get(store.data_mut());
            Ok((match view.new_publisher(topic, elements, size, true) {
                Ok(p) => Ok(view.table.push(p)?),
                Err(e) => Err(e),
            },))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.subscribers",
        move |mut store, (this,): (Resource<Publisher>,)| {
            let view = get(store.data_mut());
            let topic = view.table.get(&this)?.topic.clone();
            Ok((match Subscriber::new(view.ctx, topic) {
                Ok(s) => Ok(view.table.push(s)?),
                Err(e) => Err(e),
            },))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.allocate",
        move |mut store, (this,): (Resource<Publisher>,)| {
            Ok((get(store.data_mut()).allocate(&this)?,))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.allocate-within",
        move |mut store, (this, timeout_ms): (Resource<Publisher>, u32)| {
            Ok((get(store.data_mut()).within(timeout_ms, |v| v.allocate(&this))?,))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.publish",
        move |mut store, (this, block): (Resource<Publisher>, Resource<MemoryBlock>)| {
            Ok((get(store.data_mut()).publish(&this, block)?,))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.loan",
        move |mut store, (this,): (Resource<Publisher>,)| Ok((get(store.data_mut()).loan(&this)?,)),
    )?;
    inst.func_wrap(
        "[method]publisher.loan-within",
        move |mut store, (this, timeout_ms): (Resource<Publisher>, u32)| {
            Ok((get(store.data_mut()).within(timeout_ms, |v| v.loan(&this))?,))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.publish-loan",
        move |mut store, (this, loan, size, next): (Resource<Publisher>, u64, u32, bool)| {
            Ok((get(store.data_mut()).publish_loan(&this, loan, size, next)?,))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.drop-loan",
        move |mut store, (this, loan): (Resource<Publisher>, u64)| {
            Ok((get(store.data_mut()).drop_loan(&this, loan)?,))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.subscriber-count",
        move |mut store, (this,): (Resource<Publisher>,)| {
            let view = get(store.data_mut());
            let n = view.table.get(&this)?.topic.subscriber_count();
            Ok((u32::try_from(n).unwrap_or(u32::MAX),))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.pool-storage",
        move |mut store, (this,): (Resource<Publisher>,)| {
            Ok((get(store.data_mut()).publisher_pool_storage(&this)?,))
        },
    )?;
    inst.func_wrap(
        "[method]publisher.map-pool",
        move |mut store, (this,): (Resource<Publisher>,)| {
            Ok((get(store.data_mut()).publisher_map_pool(&this)?,))
        },
    )?;
    inst.func_wrap(
        "[constructor]subscriber",
        move |mut store, (topic,): (String,)| {
            let mut view = get(store.data_mut());
            Ok((match view.new_subscriber(&topic) {
                Ok(s) => Ok(view.table.push(s)?),
                Err(e) => Err(e),
            },))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.next",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            Ok((get(store.data_mut()).take(&this, true)?,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.try-next",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            Ok((get(store.data_mut()).take(&this, false)?,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.get-stream",
        move |mut store: StoreContextMut<'_, T>, (this,): (Resource<Subscriber>,)| {
            let queue = get(store.data_mut()).table.get(&this)?.queue.clone();
            let reader = StreamReader::new(&mut store, QueueStream { queue, get })?;
            Ok((reader,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.dropped",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            let view = get(store.data_mut());
            let dropped = view.table.get(&this)?.queue.dropped();
            Ok((dropped,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.pool-storage",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            Ok((get(store.data_mut()).pool_storage(&this)?,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.map-pool",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            Ok((get(store.data_mut()).map_pool(&this)?,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.next-pooled",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            Ok((get(store.data_mut()).take_pooled(&this, true)?,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.try-next-pooled",
        move |mut store, (this,): (Resource<Subscriber>,)| {
            Ok((get(store.data_mut()).take_pooled(&this, false)?,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.release",
        move |mut store, (this, lease): (Resource<Subscriber>, u64)| {
            Ok((get(store.data_mut()).release(&this, lease)?,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.next-pooled-after",
        move |mut store, (this, lease): (Resource<Subscriber>, u64)| {
            Ok((get(store.data_mut()).take_pooled_after(&this, lease, true)?,))
        },
    )?;
    inst.func_wrap(
        "[method]subscriber.try-next-pooled-after",
        move |mut store, (this, lease): (Resource<Subscriber>, u64)| {
            Ok((get(store.data_mut()).take_pooled_after(&this, lease, false)?,))
        },
    )?;
    Ok(())
}
