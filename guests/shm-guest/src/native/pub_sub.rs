//! The native `pub-sub` interface: topics in-process, the same rules as the
//! wasm host's broker (pool blocks return only when every subscriber
//! dropped its clone; bounded queues; block or drop-oldest when full).
//!
//! It drives the same rules as the host ([`shm_rules::pubsub`]: the
//! settings, the pool's free-block search and publish checks, queues,
//! the reclaim of blocks kept by stalling subscribers, wake-ups on release).
//! The settings are [`PubSubConfig`]'s defaults, changed by the environment
//! as the runner's flags change the wasm host's: `SHM_QUEUE` (default 8),
//! `SHM_OVERFLOW` (`block`, the default, or `drop-oldest`), `SHM_MAX_HELD`
//! (default 4) and `SHM_STALL_LIMIT` (seconds, default 10). One process has
//! no sandbox and one guest: where the host evicts a stalling subscriber,
//! natively its subscription ends (its queue stalled) or, for a message it
//! holds, the publisher waits within its timeout.
//!
//! Pooled topics keep the host's rules too: a subscription holds a pool
//! mapping ([`shm_rules::Access::Pool`]) of every block, and each message is
//! an in-pool shared read until released. Natively the "mapping" is only
//! bookkeeping (the bytes are already in this address space), and a
//! message's `address` is the rules' virtual one: read it with
//! [`Subscriber::lease_bytes`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use shm_rules::guest_text::check_topic_name;
use shm_rules::pubsub::ring::{offered_bytes, returned_bytes, HeapRegion, RingStage};
use shm_rules::pubsub::{
    check_pool, fan_out, reclaim, Overflow, Pool, PubSubConfig, Queue, Reclaimer, SharedPool,
    Topic, Topics,
};
use shm_rules::{Access, BackingId, HandleId};

use super::exchange::MemoryBlock;
use super::native;

/// Why a publish/subscribe operation failed (the WIT `pub-sub-error`,
/// defined once in `shm-rules`).
pub use shm_rules::PubSubError;

/// A message of a pooled topic (the WIT `pooled-message`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PooledMessage {
    /// Names the message for `release`.
    pub lease: u64,
    /// Natively a virtual address (see the module's notes).
    pub address: u32,
    /// How many bytes are valid.
    pub size: u32,
}

/// A pool block lent for writing (the WIT `pooled-loan`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PooledLoan {
    /// Names the loan for `publish-loan` and `drop-loan`.
    pub loan: u64,
    /// Natively a virtual address (see the module's notes).
    pub address: u32,
    /// The block's size: every byte of it is writable.
    pub size: u32,
}

/// A subscriber's lease ring (the WIT `ring-area`). Natively the regions
/// are heap memory ([`Subscriber::ring_regions`]) and the addresses are 0:
/// read a block with [`Subscriber::ring_block_bytes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingArea {
    /// Natively 0 (see above).
    pub offered: u32,
    /// Natively 0 (see above).
    pub returned: u32,
    /// How many messages the ring holds at most.
    pub capacity: u32,
    /// Natively one 0 per pool block (see above).
    pub blocks: Vec<u32>,
}

/// What `wait-ring` found (the WIT `ring-wait`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingWait {
    /// How many messages the ring offered so far.
    pub published: u64,
    /// No message will be offered beyond `published`.
    pub ended: bool,
}

/// A subscription's ring: its regions and the pool mapping it reads.
struct NativeRing {
    capacity: u32,
    offered: HeapRegion,
    returned: HeapRegion,
    pool: Arc<SharedPool>,
}

/// The topics of this process.
#[derive(Default)]
pub(crate) struct Broker {
    topics: Topics,
    /// The live subscriptions (for the subscription limit).
    live: Mutex<Vec<std::sync::Weak<Queue>>>,
}

/// How many subscriptions this process ever made (a native topology runner
/// waits for its subscribers to subscribe before starting the publisher).
pub fn subscriptions() -> usize {
    native().pubsub.topics.subscriptions()
}

/// The settings: the defaults, changed by `SHM_QUEUE`, `SHM_OVERFLOW`,
/// `SHM_MAX_HELD` and `SHM_STALL_LIMIT` (see the module's notes).
pub(crate) fn config_from_env() -> PubSubConfig {
    let var = |name: &str| std::env::var(name).ok();
    let mut config = PubSubConfig::default();
    if let Some(queue) = var("SHM_QUEUE").and_then(|v| v.parse().ok()) {
        config = config.queue(queue);
    }
    if var("SHM_OVERFLOW").as_deref() == Some("drop-oldest") {
        config = config.overflow(Overflow::DropOldest);
    }
    if let Some(held) = var("SHM_MAX_HELD").and_then(|v| v.parse().ok()) {
        config = config.max_held(held);
    }
    let stall = var("SHM_STALL_LIMIT").and_then(|v| v.parse::<f64>().ok());
    if let Some(stall) = stall.and_then(|s| std::time::Duration::try_from_secs_f64(s).ok()) {
        config = config.stall_limit(stall);
    }
    config
}

/// A subscription of this program, within the subscription limit (the
/// host's per guest: natively the program is one guest). Natively there is
/// no sandbox to keep apart: every topic is permitted.
fn subscribe(topic: &Arc<Topic>) -> Result<Subscriber, PubSubError> {
    let n = native();
    let mut live = n.pubsub.live.lock().unwrap_or_else(|e| e.into_inner());
    live.retain(|q| q.strong_count() > 0);
    if live.len() >= n.config.max_subscriptions as usize {
        return Err(PubSubError::LimitExceeded);
    }
    let queue = n.pubsub.topics.subscribe(topic, n.guest);
    live.push(Arc::downgrade(&queue));
    Ok(Subscriber {
        topic: topic.clone(),
        queue,
        pooled: Mutex::default(),
        ring: Mutex::default(),
    })
}

/// The publishing side of a topic (the WIT resource `publisher`).
pub struct Publisher {
    /// The topic's name (for the log).
    name: String,
    topic: Arc<Topic>,
    /// The pool (the rules' [`Pool`]), its handles held by the broker guest.
    pool: Mutex<Pool>,
    /// Blocks lent with `loan`, attached for writing: the handle and size.
    loans: Mutex<HashMap<u64, (MemoryBlock, u32)>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("pool", &self.pool().len())
            .finish_non_exhaustive()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.topic.close_publisher();
        native().pubsub.topics.keep_ended(self.topic.clone());
        // Loans end unpublished: their writes commit nothing.
        drop(std::mem::take(
            self.loans.get_mut().unwrap_or_else(|e| e.into_inner()),
        ));
        let pool = std::mem::take(self.pool.get_mut().unwrap_or_else(|e| e.into_inner()));
        for &h in pool.handles() {
            native().drop_handle(h);
        }
    }
}

impl Publisher {
    /// A publisher on `topic` with `elements` blocks of `element_size` bytes.
    pub fn new(topic: &str, elements: u32, element_size: u32) -> Result<Publisher, PubSubError> {
        Publisher::open(topic, elements, element_size, false)
    }

    /// A publisher whose subscribers may map its pool (a pooled topic).
    pub fn pooled(topic: &str, elements: u32, element_size: u32) -> Result<Publisher, PubSubError> {
        Publisher::open(topic, elements, element_size, true)
    }

    fn open(
        topic: &str,
        elements: u32,
        element_size: u32,
        pooled: bool,
    ) -> Result<Publisher, PubSubError> {
        let n = native();
        check_topic_name(topic).map_err(|_| PubSubError::InvalidArgument)?;
        check_pool(elements, element_size, pooled, &n.config)?;
        let name = topic.to_string();
        let topic = n.pubsub.topics.topic(topic);
        if !topic.open_publisher() {
            return Err(PubSubError::TopicTaken);
        }
        let publisher = Publisher {
            name,
            topic,
            pool: Mutex::new(Pool::with_capacity(elements as usize)),
            loans: Mutex::default(),
        };
        for _ in 0..elements {
            let h = n
                .create(element_size)
                .map_err(|_| PubSubError::InvalidArgument)?;
            let mut ledger = n.ledger();
            ledger
                .transfer(h, n.broker)
                .map_err(|_| PubSubError::Internal)?;
            let backing = ledger.backing_of(h).map_err(|_| PubSubError::Internal)?.0;
            drop(ledger);
            publisher.pool().push(h, backing);
        }
        if pooled {
            let blocks = publisher.pool().handles().to_vec();
            publisher.topic.share_pool(Arc::new(SharedPool {
                blocks,
                element_size,
            }));
        }
        Ok(publisher)
    }

    /// A new subscription to this topic.
    pub fn subscribers(&self) -> Result<Subscriber, PubSubError> {
        subscribe(&self.topic)
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A free pool block, writable, and its bytes initialized from last use.
    pub fn allocate(&self) -> Result<(MemoryBlock, u32), PubSubError> {
        let n = native();
        let mut pool = self.pool();
        let mut found = pool.free_block(&n.ledger());
        if found.is_none() {
            // Ring subscribers release without a call: read what they
            // returned, as the host does.
            if self.topic.reconcile_rings(|h| n.drop_handle(h)) > 0 {
                found = pool.free_block(&n.ledger());
            }
        }
        if found.is_none() && self.reclaim(&pool) {
            found = pool.free_block(&n.ledger());
        }
        let index = found.ok_or(PubSubError::PoolExhausted)?;
        pool.lent(index);
        let free = pool.handle(index);
        // Aliased under the pool's lock: until the alias exists the block
        // counts as free, and another thread must not find it.
        let mut ledger = n.ledger();
        let valid = ledger.valid_range(free).map(|(c, v)| c + v).unwrap_or(0);
        let handle = ledger
            .alias(free, n.guest)
            .map_err(|_| PubSubError::InvalidArgument)?;
        drop(ledger);
        drop(pool);
        Ok((MemoryBlock { handle }, valid))
    }

    /// [`Publisher::allocate`], waiting up to `timeout_ms` while every block
    /// is in use (woken by releases, for at most the stall limit).
    pub fn allocate_within(&self, timeout_ms: u32) -> Result<(MemoryBlock, u32), PubSubError> {
        within(timeout_ms, || self.allocate())
    }

    /// Frees pool blocks that stalling subscribers keep (the rules'
    /// [`reclaim`]): natively a stalling subscription ends.
    fn reclaim(&self, pool: &Pool) -> bool {
        let config = &native().config;
        let backend = NativeReclaim { topic: &self.topic };
        reclaim(
            pool,
            &self.topic,
            &self.name,
            config,
            std::time::Instant::now(),
            &backend,
        )
    }

    /// Sends `block` to every subscriber as a read-only clone.
    pub fn publish(&self, block: MemoryBlock) -> Result<(), PubSubError> {
        let n = native();
        // The message must not change once published: the rules' checks.
        let index = self.pool().check_publish(&n.ledger(), block.handle)?;
        let pool_handle = self.pool().handle(index);
        // The publisher's write right ends before anyone can read.
        drop(block);
        let backend = NativeReclaim { topic: &self.topic };
        let clone = || n.ledger().clone_handle(pool_handle, n.broker).ok();
        fan_out(&self.topic, &self.name, &n.config, clone, &backend, true)?;
        self.pool().published(index, std::time::Instant::now());
        Ok(())
    }

    /// How many subscriptions the topic has.
    pub fn subscriber_count(&self) -> u32 {
        self.topic.subscriber_count() as u32
    }

    /// The storage [`Publisher::map_pool`] needs.
    pub fn pool_storage(&self) -> Result<u32, PubSubError> {
        let pool = self.topic.pool().ok_or(PubSubError::NotPooled)?;
        let n = u32::try_from(pool.blocks.len()).unwrap_or(u32::MAX);
        Ok(native().ledger().optimum_size(n, pool.element_size))
    }

    /// In-process there are no write windows (every thread shares one
    /// address space): blocks are written where they are, as before.
    pub fn map_pool(&self) -> Result<(), PubSubError> {
        self.topic.pool().map(|_| ()).ok_or(PubSubError::NotPooled)
    }

    /// A free pool block attached for writing, held under a loan: natively
    /// its bytes are the block's own ([`Publisher::loan_bytes`]).
    pub fn loan(&self) -> Result<PooledLoan, PubSubError> {
        let (block, _) = self.allocate()?;
        let area = block
            .attach(super::exchange::AttachFlags::WRITE)
            .map_err(PubSubError::from_attach)?;
        let loan = block.handle.0;
        self.loans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(loan, (block, area.size));
        Ok(PooledLoan {
            loan,
            address: area.address,
            size: area.size,
        })
    }

    /// [`Publisher::loan`], waiting up to `timeout_ms` while every block is
    /// in use (woken by releases, for at most the stall limit).
    pub fn loan_within(&self, timeout_ms: u32) -> Result<PooledLoan, PubSubError> {
        within(timeout_ms, || self.loan())
    }

    /// The bytes of a loan this publisher holds.
    ///
    /// # Safety
    ///
    /// The slice must not be used after the loan is published or dropped
    /// (the handle is detached or dropped then), and no two slices of one
    /// loan may be alive at once.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn loan_bytes(&self, loan: u64) -> Option<&mut [u8]> {
        let loans = self.loans.lock().unwrap_or_else(|e| e.into_inner());
        let &(ref block, size) = loans.get(&loan)?;
        // SAFETY: the loan's handle holds a write attachment of the whole
        // block (taken in `loan`, ended only by `publish-loan` or
        // `drop-loan`); the caller keeps the slice within it and unique.
        unsafe { super::Native::bytes(&native().ledger(), block.handle, 0, size) }.ok()
    }

    /// Commits the loan's first `size` bytes and publishes them; with
    /// `next`, lends the next free block (`None`: none is free now).
    pub fn publish_loan(
        &self,
        loan: u64,
        size: u32,
        next: bool,
    ) -> Result<Option<PooledLoan>, PubSubError> {
        let mut loans = self.loans.lock().unwrap_or_else(|e| e.into_inner());
        let &(_, block_size) = loans.get(&loan).ok_or(PubSubError::UnknownLease)?;
        if size > block_size {
            return Err(PubSubError::InvalidArgument);
        }
        let (block, _) = loans.remove(&loan).ok_or(PubSubError::UnknownLease)?;
        drop(loans);
        block.detach(size).map_err(|_| PubSubError::Internal)?;
        self.publish(block)?;
        if !next {
            return Ok(None);
        }
        // Sent: a next loan that cannot be made now is `None` (as the host).
        Ok(self.loan().ok())
    }

    /// Commits and sends a batch of loans in order, then lends up to
    /// `next` blocks; every loan is checked first (as the host).
    pub fn publish_loans(
        &self,
        batch: &[(u64, u32)],
        next: u32,
    ) -> Result<Vec<PooledLoan>, PubSubError> {
        {
            let loans = self.loans.lock().unwrap_or_else(|e| e.into_inner());
            let mut seen = std::collections::HashSet::with_capacity(batch.len());
            for &(loan, size) in batch {
                let &(_, block_size) = loans.get(&loan).ok_or(PubSubError::UnknownLease)?;
                if !seen.insert(loan) {
                    return Err(PubSubError::UnknownLease);
                }
                if size > block_size {
                    return Err(PubSubError::InvalidArgument);
                }
            }
        }
        for &(loan, size) in batch {
            self.publish_loan(loan, size, false)?;
        }
        let pool = self.pool().handles().len();
        let mut lent = Vec::new();
        for _ in 0..(next as usize).min(pool) {
            match self.loan() {
                Ok(l) => lent.push(l),
                Err(_) => break,
            }
        }
        Ok(lent)
    }

    /// Gives a loan back unpublished.
    pub fn drop_loan(&self, loan: u64) -> Result<(), PubSubError> {
        let held = self
            .loans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&loan);
        held.map(drop).ok_or(PubSubError::UnknownLease)
    }
}

/// Tries `attempt` until it finds a free block, for at most `timeout_ms`
/// and the stall limit (`pool-exhausted` after that), woken by releases as
/// the host is ([`shm_rules::pubsub::Released`]).
fn within<T>(
    timeout_ms: u32,
    mut attempt: impl FnMut() -> Result<T, PubSubError>,
) -> Result<T, PubSubError> {
    let n = native();
    let timeout = std::time::Duration::from_millis(timeout_ms.into()).min(n.config.stall_limit);
    let done = n.released.retry(timeout, || match attempt() {
        Err(PubSubError::PoolExhausted) => None,
        done => Some(done),
    });
    done.unwrap_or(Err(PubSubError::PoolExhausted))
}

/// The native side of the rules' reclaim: one process has one guest, so a
/// stalling subscription ends (its queue is left) instead of a guest being
/// evicted, and a message held too long cannot be taken back.
struct NativeReclaim<'a> {
    topic: &'a Topic,
}

impl Reclaimer for NativeReclaim<'_> {
    fn handles_of_block(&self, handle: HandleId) -> usize {
        native().ledger().handles_of_block(handle).unwrap_or(0)
    }

    fn backing(&self, handle: HandleId) -> Option<BackingId> {
        native().ledger().backing_of(handle).ok().map(|b| b.0)
    }

    fn drop_queued(&self, handle: HandleId) {
        native().drop_handle(handle);
    }

    fn stalled_queue(&self, queue: &Arc<Queue>, reason: String) -> bool {
        // Natively there is no guest to evict: the subscription ends (its
        // `next` then says the stream ended), and the program's log says why.
        tracing::warn!(
            "a subscription {reason}: it ends (SHM_STALL_LIMIT sets the limit, in seconds)"
        );
        for h in self.topic.leave(queue) {
            native().drop_handle(h);
        }
        true
    }

    fn stalled_holders(&self, _pool_handle: HandleId, _reason: String) -> bool {
        false
    }
}

/// The receiving side of a topic (the WIT resource `subscriber`).
pub struct Subscriber {
    topic: Arc<Topic>,
    queue: Arc<Queue>,
    pooled: Mutex<Pooled>,
    ring: Mutex<Option<NativeRing>>,
}

/// A subscription's pool mapping and held messages.
#[derive(Default)]
struct Pooled {
    pool: Option<Arc<SharedPool>>,
    maps: Vec<HandleId>,
    /// Each block's mapping handle.
    backings: HashMap<BackingId, HandleId>,
    /// Held messages: the handle and its bytes.
    leases: HashMap<u64, (HandleId, &'static [u8])>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").finish_non_exhaustive()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let queued = self.topic.leave(&self.queue);
        let pooled = std::mem::take(&mut *self.pooled.lock().unwrap_or_else(|e| e.into_inner()));
        let held = pooled.leases.into_values().map(|(h, _)| h);
        for h in queued.into_iter().chain(held).chain(pooled.maps) {
            native().drop_handle(h);
        }
    }
}

/// Moves a queued message to the program; when its handle limit refuses
/// it, the message is dropped (the host traps the subscriber there; natively
/// the next one is taken) and `None` says so.
fn deliver(handle: HandleId) -> Option<MemoryBlock> {
    let n = native();
    if n.ledger().transfer(handle, n.guest).is_err() {
        n.drop_handle(handle);
        return None;
    }
    Some(MemoryBlock { handle })
}

impl Subscriber {
    /// Subscribes to `topic`.
    pub fn new(topic: &str) -> Result<Subscriber, PubSubError> {
        check_topic_name(topic).map_err(|_| PubSubError::InvalidArgument)?;
        subscribe(&native().pubsub.topics.topic(topic))
    }

    /// The next message, waiting for it.
    pub fn next(&self) -> Option<MemoryBlock> {
        loop {
            if let Some(block) = deliver(self.queue.pop_wait()?) {
                return Some(block);
            }
        }
    }

    /// The next message if one is queued.
    pub fn try_next(&self) -> Option<MemoryBlock> {
        loop {
            if let Some(block) = deliver(self.queue.try_pop()?) {
                return Some(block);
            }
        }
    }

    /// Messages lost to the drop-oldest policy.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// Storage the topic's pool needs (natively only for the rules'
    /// bookkeeping).
    pub fn pool_storage(&self) -> Result<u32, PubSubError> {
        let pool = self.topic.pool().ok_or(PubSubError::NotPooled)?;
        let n = u32::try_from(pool.blocks.len()).unwrap_or(u32::MAX);
        Ok(native().ledger().optimum_size(n, pool.element_size))
    }

    /// Maps the topic's pool: a pool mapping of every block.
    pub fn map_pool(&self) -> Result<(), PubSubError> {
        let pool = self.topic.pool().ok_or(PubSubError::NotPooled)?;
        let mut pooled = self.pooled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mapped) = &pooled.pool {
            if Arc::ptr_eq(mapped, &pool) {
                return Ok(());
            }
            if !pooled.leases.is_empty() {
                return Err(PubSubError::MessagesHeld);
            }
        }
        let n = native();
        for h in std::mem::take(&mut pooled.maps) {
            n.drop_handle(h);
        }
        pooled.backings.clear();
        pooled.pool = None;
        // As the host: a clone of every block attached as a pool mapping;
        // on a refusal the mappings made so far are dropped.
        let mapped = (|| {
            let mut ledger = n.ledger();
            for &block in &pool.blocks {
                let map = ledger
                    .clone_handle(block, n.guest)
                    .map_err(|e| PubSubError::from_attach(e.into()))?;
                pooled.maps.push(map);
                ledger
                    .attach(n.guest, map, Access::Pool)
                    .map_err(|e| PubSubError::from_attach(e.into()))?;
                let backing = ledger.backing_of(map).map_err(|_| PubSubError::Internal)?.0;
                pooled.backings.insert(backing, map);
            }
            Ok(())
        })();
        if let Err(e) = mapped {
            pooled.backings.clear();
            for h in std::mem::take(&mut pooled.maps) {
                n.drop_handle(h);
            }
            return Err(e);
        }
        pooled.pool = Some(pool);
        Ok(())
    }

    /// Takes a message with `pop` (waiting or not) into the mapped pool.
    fn take_pooled(
        &self,
        pop: impl FnOnce(&Queue) -> Option<HandleId>,
    ) -> Result<Option<PooledMessage>, PubSubError> {
        // As the host: a bounded number of messages held at once, checked
        // before taking (or waiting for) another.
        let held = self
            .pooled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .leases
            .len();
        if held >= native().config.max_held as usize {
            return Err(PubSubError::LimitExceeded);
        }
        let Some(handle) = pop(&self.queue) else {
            return Ok(None);
        };
        let n = native();
        let mut pooled = self.pooled.lock().unwrap_or_else(|e| e.into_inner());
        let backing = n.ledger().backing_of(handle).map(|b| b.0);
        let Some(mapping) = backing.ok().and_then(|b| pooled.backings.get(&b).copied()) else {
            self.queue.unpop(handle);
            return Err(PubSubError::PoolChanged);
        };
        if n.ledger().transfer(handle, n.guest).is_err() {
            // The program's handle limit: the message is dropped.
            n.drop_handle(handle);
            return Err(PubSubError::LimitExceeded);
        }
        // SAFETY: the slice is kept with the lease and handed out only by
        // `lease_bytes`, whose contract ends its use at `release` (when
        // the handle is dropped).
        match unsafe { n.attach_in_pool(handle, mapping) } {
            Ok((bytes, address)) => {
                pooled.leases.insert(handle.0, (handle, bytes));
                Ok(Some(PooledMessage {
                    lease: handle.0,
                    address,
                    size: bytes.len() as u32,
                }))
            }
            Err(_) => {
                n.drop_handle(handle);
                Err(PubSubError::StillAttached)
            }
        }
    }

    /// The next message in the mapped pool, waiting for it.
    pub fn next_pooled(&self) -> Result<Option<PooledMessage>, PubSubError> {
        self.take_pooled(Queue::pop_wait)
    }

    /// The next message in the mapped pool if one is queued.
    pub fn try_next_pooled(&self) -> Result<Option<PooledMessage>, PubSubError> {
        self.take_pooled(Queue::try_pop)
    }

    /// `release(lease)`, then `next-pooled`.
    pub fn next_pooled_after(&self, lease: u64) -> Result<Option<PooledMessage>, PubSubError> {
        self.release(lease)?;
        self.next_pooled()
    }

    /// `release(lease)`, then `try-next-pooled`.
    pub fn try_next_pooled_after(&self, lease: u64) -> Result<Option<PooledMessage>, PubSubError> {
        self.release(lease)?;
        self.try_next_pooled()
    }

    /// Gives a message back to the pool.
    pub fn release(&self, lease: u64) -> Result<(), PubSubError> {
        let held = self
            .pooled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .leases
            .remove(&lease);
        let (handle, _) = held.ok_or(PubSubError::UnknownLease)?;
        native().drop_handle(handle);
        Ok(())
    }

    /// The bytes of a held message (native only: wasm guests read them at
    /// the message's address).
    ///
    /// # Safety
    ///
    /// The slice must not be used after `release(lease)` or after this
    /// subscription is dropped.
    pub unsafe fn lease_bytes(&self, lease: u64) -> Option<&[u8]> {
        let pooled = self.pooled.lock().unwrap_or_else(|e| e.into_inner());
        pooled.leases.get(&lease).map(|&(_, bytes)| bytes)
    }

    /// The storage `map-ring` needs (natively only the pool's bookkeeping).
    pub fn ring_storage(&self, _capacity: u32) -> Result<u32, PubSubError> {
        self.pool_storage()
    }

    /// Gives this subscription a lease ring of `capacity` messages (as the
    /// host: at most the queue bound plus the held bound).
    pub fn map_ring(&self, capacity: u32) -> Result<RingArea, PubSubError> {
        let n = native();
        n.config.check_ring(capacity)?;
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = &*ring {
            if r.capacity != capacity {
                return Err(PubSubError::InvalidArgument);
            }
            return Ok(RingArea {
                offered: 0,
                returned: 0,
                capacity,
                blocks: vec![0; r.pool.blocks.len()],
            });
        }
        self.map_pool()?;
        let pool = self.topic.pool().ok_or(PubSubError::NotPooled)?;
        let index: HashMap<BackingId, u32> = {
            let ledger = n.ledger();
            pool.blocks
                .iter()
                .enumerate()
                .filter_map(|(i, &h)| Some((ledger.backing_of(h).ok()?.0, i as u32)))
                .collect()
        };
        let offered = HeapRegion::new(offered_bytes(capacity));
        let returned = HeapRegion::new(returned_bytes(capacity));
        let describe = Box::new(move |h: HandleId| {
            let ledger = native().ledger();
            let block = *index.get(&ledger.backing_of(h).ok()?.0)?;
            let (consumed, valid) = ledger.valid_range(h).ok()?;
            Some((block, consumed + valid))
        });
        let stage = RingStage::new(
            capacity,
            Box::new(offered.clone()),
            Box::new(returned.clone()),
            describe,
        );
        self.queue
            .attach_ring(stage, |h| n.drop_handle(h))
            .map_err(|(refused, _)| PubSubError::from(refused))?;
        let blocks = vec![0; pool.blocks.len()];
        *ring = Some(NativeRing {
            capacity,
            offered,
            returned,
            pool,
        });
        Ok(RingArea {
            offered: 0,
            returned: 0,
            capacity,
            blocks,
        })
    }

    /// Reads what the subscriber released, then waits up to `timeout_ms`
    /// until the ring offered more than `seen` messages or ended.
    pub fn wait_ring(&self, seen: u64, timeout_ms: u32) -> Result<RingWait, PubSubError> {
        let pool = match &*self.ring.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(r) => r.pool.clone(),
            None => return Err(PubSubError::InvalidArgument),
        };
        if self.topic.pool().is_some_and(|p| !Arc::ptr_eq(&p, &pool)) {
            return Err(PubSubError::PoolChanged);
        }
        let timeout = std::time::Duration::from_millis(timeout_ms.into());
        let w = self
            .queue
            .wait_ring(seen, timeout, |h| native().drop_handle(h))?;
        Ok(RingWait {
            published: w.published,
            ended: w.ended,
        })
    }

    /// The ring's regions (native only: wasm guests read them at the
    /// ring area's addresses).
    pub fn ring_regions(&self) -> Option<(HeapRegion, HeapRegion)> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.as_ref()
            .map(|r| (r.offered.clone(), r.returned.clone()))
    }

    /// The first `len` bytes of the ring's pool block `index` (native only:
    /// wasm guests read them at the block's address).
    ///
    /// # Safety
    ///
    /// The block must hold a message the ring offered and the subscriber
    /// has not returned (so that it cannot change), and the slice must not
    /// be used after that message is returned or the subscription dropped.
    pub unsafe fn ring_block_bytes(&self, index: u32, len: u32) -> Option<&[u8]> {
        let pooled = self.pooled.lock().unwrap_or_else(|e| e.into_inner());
        let pool = pooled.pool.as_ref()?;
        let &block = pool.blocks.get(index as usize)?;
        let ledger = native().ledger();
        let (_, start, bytes) = ledger.backing_of(block).ok()?;
        let bytes = bytes?;
        let from = start as usize;
        let cells = bytes.cells.get(from..from.checked_add(len as usize)?)?;
        // SAFETY: `cells` lies inside the block's bytes, which live as long
        // as a handle of the block does: the subscription's pool mapping
        // holds one until the subscription is dropped, which the caller's
        // slice does not outlive. The offered message is held by the ring
        // (a read-only clone), so no write attachment of the block exists
        // until it is returned, after the caller's last use.
        Some(unsafe { &*(std::ptr::from_ref(cells) as *const [u8]) })
    }

    /// The messages as a stream.
    pub fn get_stream(&self) -> StreamReader {
        StreamReader {
            queue: self.queue.clone(),
        }
    }
}

/// A subscription's messages as an asynchronous stream (the native
/// stand-in for `stream<memory-block>`).
pub struct StreamReader {
    queue: Arc<Queue>,
}

impl StreamReader {
    /// The next message; `None` when the stream ends. (Named as in
    /// wit-bindgen's `StreamReader`.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> impl Future<Output = Option<MemoryBlock>> + '_ {
        NextMessage { queue: &self.queue }
    }
}

struct NextMessage<'a> {
    queue: &'a Queue,
}

impl Future for NextMessage<'_> {
    type Output = Option<MemoryBlock>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.queue.poll_pop(cx, false).map(|h| h.and_then(deliver))
    }
}
