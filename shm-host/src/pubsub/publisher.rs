//! A topic's publisher: its pool, lending free blocks (`allocate`,
//! `loan`), publishing, and reclaiming blocks from stalling subscribers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shm_rules::guest_text::{check_topic_name, Shown};
use shm_rules::pubsub::{check_pool, fan_out, reclaim, Pool, Queue, Reclaimer, SharedPool, Topic};
use shm_rules::IdMap;
use wasmtime::component::Resource;

use super::subscriber::map_blocks;
use super::Broker;
use crate::host::WindowToOpen;
use crate::rules::{BackingId, HandleId, PubSubError};
use crate::wit::{PooledLoan, ShmCtxView};
use crate::{MemoryBlock, ShmCtx, ShmHost};

/// The host type behind the WIT resource `publisher`.
pub struct Publisher {
    pub(crate) host: ShmHost,
    pub(crate) name: String,
    pub(crate) topic: Arc<Topic>,
    /// The pool (the rules' [`Pool`]), its handles held by the broker's
    /// guest.
    pub(crate) pool: Pool,
    /// The publisher's own mapping of its pool (`publisher.map-pool`):
    /// read-only pool mappings, held by the publisher's guest, written
    /// through write windows (see [`crate::os::windows`]).
    pub(crate) mapped: Vec<HandleId>,
    /// Blocks lent for writing with `loan`, attached, by loan.
    pub(crate) loans: IdMap<u64, HandleId>,
    /// The pool as offered to subscribers (a pooled publisher).
    pub(crate) shared: Option<Arc<SharedPool>>,
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
                for &h in self.pool.handles() {
                    self.host.drop_detached(h);
                }
            }
        }
        tracing::debug!(topic = %self.name, "publisher closed");
    }
}

impl ShmCtxView<'_> {
    pub(crate) fn broker(&self) -> &Broker {
        self.ctx.host().broker()
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
        check_pool(elements, size, pooled, &broker.config)?;
        let t = broker.topics.topic(&topic);
        if !t.open_publisher() {
            return Err(PubSubError::TopicTaken);
        }
        let mut publisher = Publisher {
            host: host.clone(),
            name: topic,
            topic: t,
            pool: Pool::with_capacity(elements as usize),
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
            publisher.pool.push(h, backing?);
        }
        if pooled {
            let shared = Arc::new(SharedPool {
                blocks: publisher.pool.handles().to_vec(),
                element_size: size,
            });
            publisher.topic.share_pool(shared.clone());
            publisher.shared = Some(shared);
        }
        tracing::debug!(topic = %publisher.name, elements, size, pooled, "publisher created");
        Ok(publisher)
    }

    pub(crate) fn allocate(
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
        let mut found = publisher.pool.free_block(&host.ledger());
        if found.is_none() {
            // Lease rings' subscribers release without telling the host:
            // read what they returned.
            if publisher.topic.reconcile_rings(|h| host.drop_detached(h)) > 0 {
                found = publisher.pool.free_block(&host.ledger());
            }
        }
        if found.is_none() && self.reclaim(publisher) {
            found = publisher.pool.free_block(&host.ledger());
        }
        let Some(index) = found else {
            return Ok(Err(PubSubError::PoolExhausted));
        };
        let publisher = self.table.get_mut(this)?;
        publisher.pool.lent(index);
        let pool_handle = publisher.pool.handle(index);
        let valid = host.valid_len(pool_handle);
        Ok(match self.ctx.alias(pool_handle) {
            Ok(lent) => Ok((lent, valid)),
            Err(_) => Err(PubSubError::InvalidArgument),
        })
    }

    /// A free pool block attached for writing, held under a loan.
    pub(crate) fn loan(
        &mut self,
        this: &Resource<Publisher>,
    ) -> wasmtime::Result<Result<PooledLoan, PubSubError>> {
        Ok(match self.loan_later(this)? {
            Ok((loan, window)) => {
                self.ctx.open_windows(window.as_slice());
                Ok(loan)
            }
            Err(e) => Err(e),
        })
    }

    /// [`Self::loan`], with its protection window (if any) returned for
    /// the caller to open ([`ShmCtx::open_windows`]) before the guest runs
    /// again.
    fn loan_later(
        &mut self,
        this: &Resource<Publisher>,
    ) -> wasmtime::Result<Result<(PooledLoan, Option<WindowToOpen>), PubSubError>> {
        self.ctx.alive()?;
        let lent = match self.lend_free(this)? {
            Ok((lent, _)) => lent,
            Err(e) => return Ok(Err(e)),
        };
        let (area, window) = match self.ctx.attach_write_later(lent) {
            Ok(made) => made,
            Err(e) => {
                let _ = self.ctx.drop_handle(lent);
                return Ok(Err(PubSubError::from_attach(e)));
            }
        };
        self.table.get_mut(this)?.loans.insert(lent.0, lent);
        Ok(Ok((
            PooledLoan {
                loan: lent.0,
                address: area.address,
                size: area.size,
            },
            window,
        )))
    }

    /// Tries `attempt` (`allocate` or `loan`) until it finds a free block:
    /// while the pool is exhausted it waits, woken by the host's handle
    /// drops (a release may have freed a block), for at most `timeout_ms`
    /// and the stall limit; `pool-exhausted` after that. Each try also
    /// reclaims blocks from stalling subscribers, and an evicted caller
    /// stops waiting (it traps at the next try).
    pub(crate) fn within<T>(
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
    pub(crate) fn publish_loan(
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
        if let Err(e) = self.send(this, handle, true)? {
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

    /// Commits and sends a batch of loans, then lends up to `next` blocks
    /// (see the WIT's `publish-loans`).
    pub(crate) fn publish_loans(
        &mut self,
        this: &Resource<Publisher>,
        batch: &[(u64, u32)],
        next: u32,
    ) -> wasmtime::Result<Result<Vec<PooledLoan>, PubSubError>> {
        self.ctx.alive()?;
        let publisher = self.table.get(this)?;
        // Everything is checked before anything is sent.
        if batch.len() > publisher.loans.len() {
            return Ok(Err(PubSubError::UnknownLease));
        }
        let mut seen = std::collections::HashSet::with_capacity(batch.len());
        for &(loan, size) in batch {
            let Some(&handle) = publisher.loans.get(&loan) else {
                return Ok(Err(PubSubError::UnknownLease));
            };
            if !seen.insert(loan) {
                return Ok(Err(PubSubError::UnknownLease));
            }
            if self.ctx.size(handle).map_or(true, |block| size > block) {
                return Ok(Err(PubSubError::InvalidArgument));
            }
        }
        // Every loan's write right ends first, under one hold of the
        // ledger (protection windows close together, one system call per
        // run of neighbouring blocks), then the messages are sent.
        let mut items = Vec::with_capacity(batch.len());
        {
            let publisher = self.table.get_mut(this)?;
            for &(loan, size) in batch {
                if let Some(handle) = publisher.loans.remove(&loan) {
                    items.push((handle, size));
                }
            }
        }
        let detached = self.ctx.detach_all(&items);
        let mut sent = Vec::with_capacity(items.len());
        let mut failed = false;
        for (&(handle, _), done) in items.iter().zip(detached) {
            if done.is_ok() {
                sent.push(handle);
            } else {
                // Revoked or evicted meanwhile: the loan ends unsent.
                let _ = self.ctx.drop_handle(handle);
                failed = true;
            }
        }
        // Subscribers are woken once, by the batch's last message.
        let last = sent.len();
        for (i, handle) in sent.into_iter().enumerate() {
            if let Err(e) = self.send(this, handle, i + 1 == last)? {
                // What was sent before must not wait for a wake-up.
                for q in self.table.get(this)?.topic.queues() {
                    q.wake_waiters();
                }
                return Ok(Err(e));
            }
        }
        if failed {
            return Ok(Err(PubSubError::Internal));
        }
        let pool = self.table.get(this)?.pool.handles().len();
        let mut lent = Vec::new();
        let mut opening = Vec::new();
        for _ in 0..(next as usize).min(pool) {
            match self.loan_later(this)? {
                Ok((l, window)) => {
                    lent.push(l);
                    opening.extend(window);
                }
                Err(_) => break,
            }
        }
        // The windows open before the guest runs again.
        self.ctx.open_windows(&opening);
        Ok(Ok(lent))
    }

    /// Ends a loan unpublished.
    pub(crate) fn drop_loan(
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
    /// publisher (the rules' [`reclaim`]; the host evicts a stalling
    /// subscriber). Returns whether it did anything.
    pub(crate) fn reclaim(&self, publisher: &Publisher) -> bool {
        let config = &publisher.host.broker().config;
        let backend = HostReclaim {
            host: &publisher.host,
            ctx: self.ctx,
        };
        reclaim(
            &publisher.pool,
            &publisher.topic,
            &publisher.name,
            config,
            Instant::now(),
            &backend,
        )
    }

    pub(crate) fn publish(
        &mut self,
        this: &Resource<Publisher>,
        block: Resource<MemoryBlock>,
    ) -> wasmtime::Result<Result<(), PubSubError>> {
        self.ctx.alive()?;
        let handle = self.table.delete(block)?.handle();
        self.send(this, handle, true)
    }

    /// Sends `handle`, a detached handle of a pool block held by the
    /// caller's guest, to every subscription; consumes it either way.
    /// Wakes waiting subscribers if `wake` (the rules' `fan_out`).
    pub(crate) fn send(
        &mut self,
        this: &Resource<Publisher>,
        handle: HandleId,
        wake: bool,
    ) -> wasmtime::Result<Result<(), PubSubError>> {
        let publisher = self.table.get(this)?;
        let host = publisher.host.clone();
        // The message must not change once published: `handle` must be the
        // only write right besides the pool's own handle (the rules' check).
        let verdict = publisher.pool.check_publish(&host.ledger(), handle);
        let index = match verdict {
            Ok(i) => i,
            Err(e) => {
                // The block was moved into the call: it goes back (to the
                // pool, or to nothing), detached.
                let _ = self.ctx.drop_handle(handle);
                return Ok(Err(e));
            }
        };
        let pool_handle = publisher.pool.handle(index);
        // The publisher's write right ends before anyone can read.
        let _ = self.ctx.drop_handle(handle);
        let broker = host.broker();
        let backend = HostReclaim {
            host: &host,
            ctx: self.ctx,
        };
        let clone = || host.clone_for(pool_handle, broker.guest).ok();
        if let Err(e) = fan_out(
            &publisher.topic,
            &publisher.name,
            &broker.config,
            clone,
            &backend,
            wake,
        ) {
            return Ok(Err(e));
        }
        self.table
            .get_mut(this)?
            .pool
            .published(index, Instant::now());
        Ok(Ok(()))
    }

    pub(crate) fn publisher_pool_storage(
        &mut self,
        this: &Resource<Publisher>,
    ) -> wasmtime::Result<Result<u32, PubSubError>> {
        let topic = &self.table.get(this)?.topic;
        Ok(pool_storage(self.ctx, topic))
    }

    /// Maps a pooled publisher's pool into its own storage, read-only, and
    /// keys each block's mapping for a write window where it can.
    pub(crate) fn publisher_map_pool(
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
        let maps = match map_blocks(self.ctx, publisher.pool.handles()) {
            Ok(mapped) => mapped
                .into_iter()
                .map(|(map, _, _)| map)
                .collect::<Vec<_>>(),
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
}

/// The donated storage a mapping of `topic`'s whole pool needs
/// (`pool-storage` of publishers and subscribers alike).
pub(crate) fn pool_storage(ctx: &ShmCtx, topic: &Topic) -> Result<u32, PubSubError> {
    let pool = topic.pool().ok_or(PubSubError::NotPooled)?;
    let n = u32::try_from(pool.blocks.len()).unwrap_or(u32::MAX);
    Ok(ctx.optimum_size(n, pool.element_size))
}

/// The host's side of the rules' reclaim: a stalling subscriber is evicted.
struct HostReclaim<'a> {
    host: &'a ShmHost,
    /// The publisher's context.
    ctx: &'a ShmCtx,
}

impl Reclaimer for HostReclaim<'_> {
    fn handles_of_block(&self, handle: HandleId) -> usize {
        self.host.handles_of_block(handle)
    }

    fn backing(&self, handle: HandleId) -> Option<BackingId> {
        self.ctx.backing_id(handle).ok()
    }

    fn drop_queued(&self, handle: HandleId) {
        self.host.drop_detached(handle);
    }

    fn stalled_queue(&self, queue: &Arc<Queue>, reason: String) -> bool {
        self.host.evict(queue.owner(), reason)
    }

    fn stalled_holders(&self, pool_handle: HandleId, reason: String) -> bool {
        let broker = self.host.broker().guest;
        let mut acted = false;
        for holder in self.host.holders(pool_handle) {
            if holder != broker && holder != self.ctx.guest() {
                acted |= self.host.evict(holder, reason.clone());
            }
        }
        acted
    }
}
