//! A subscription: its queue, taking messages (moved to the subscriber's
//! store), and on pooled topics the mapped pool and the leases of messages
//! read in place.

use std::sync::Arc;

use shm_rules::guest_text::{check_topic_name, Shown};
use shm_rules::pubsub::{Overflow, Queue, SharedPool, Topic};
use shm_rules::IdMap;
use wasmtime::component::Resource;

use super::publisher::pool_storage;
use super::ring::SubscriberRing;
use crate::rules::{Access, BackingId, HandleId, PubSubError};
use crate::wit::{PooledMessage, ShmCtxView};
use crate::{MemoryBlock, ShmCtx, ShmHost};

/// The host type behind the WIT resource `subscriber`.
pub struct Subscriber {
    pub(crate) host: ShmHost,
    pub(crate) topic: Arc<Topic>,
    pub(crate) queue: Arc<Queue>,
    /// The pool mapped in the subscriber's memory (pooled topics).
    mapped: Option<MappedPool>,
    /// Messages taken with `next-pooled` and not yet released, by lease.
    pub(crate) leases: IdMap<u64, HandleId>,
    /// The subscription's lease ring, if it has one.
    pub(crate) ring: Option<SubscriberRing>,
}

/// A pool mapped into a subscriber: one read-only pool mapping per block.
struct MappedPool {
    pub(crate) pool: Arc<SharedPool>,
    /// The mapping handles, held by the subscriber's guest.
    pub(crate) maps: Vec<HandleId>,
    /// Each block's mapping handle.
    pub(crate) backings: IdMap<BackingId, HandleId>,
    /// Each block's backing and its address in the subscriber's memory,
    /// in pool order.
    pub(crate) blocks: Vec<(BackingId, u32)>,
}

impl Subscriber {
    pub(crate) fn new(
        ctx: &ShmCtx,
        topic: Arc<Topic>,
        overflow: Option<Overflow>,
    ) -> Result<Subscriber, PubSubError> {
        let host = ctx.host().clone();
        let queue = host.broker().subscribe(ctx.guest(), &topic, overflow)?;
        Ok(Subscriber {
            host,
            topic,
            queue,
            mapped: None,
            leases: IdMap::default(),
            ring: None,
        })
    }

    /// The mapped pool: itself, each block's address and backing, in pool
    /// order.
    pub(crate) fn mapped_pool(&self) -> Option<(Arc<SharedPool>, Vec<u32>, Vec<BackingId>)> {
        let m = self.mapped.as_ref()?;
        let (backings, addresses) = m.blocks.iter().map(|&(b, a)| (b, a)).unzip();
        Some((m.pool.clone(), addresses, backings))
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        for h in self.topic.leave(&self.queue) {
            self.host.drop_detached(h);
        }
        // Messages first, then the ring and the pool mapping they lie in.
        for (_, h) in self.leases.drain() {
            self.host.drop_anywhere(h);
        }
        for h in self.ring.take().into_iter().flat_map(|r| r.regions) {
            self.host.drop_anywhere(h);
        }
        for h in self.mapped.take().map(|m| m.maps).unwrap_or_default() {
            self.host.drop_anywhere(h);
        }
        self.host.broker().sweep(&self.host);
    }
}

impl ShmCtxView<'_> {
    /// A subscription of the caller's guest to `topic`, if granted.
    pub(crate) fn new_subscriber(&mut self, topic: &str) -> Result<Subscriber, PubSubError> {
        self.new_subscriber_with(topic, None)
    }

    /// A subscription as [`ShmCtxView::new_subscriber`] whose full queue
    /// follows `overflow` (where given) whatever the host's policy.
    pub(crate) fn new_subscriber_with(
        &mut self,
        topic: &str,
        overflow: Option<Overflow>,
    ) -> Result<Subscriber, PubSubError> {
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
        Subscriber::new(self.ctx, topic, overflow)
    }

    pub(crate) fn take(
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

    pub(crate) fn pool_storage(
        &mut self,
        this: &Resource<Subscriber>,
    ) -> wasmtime::Result<Result<u32, PubSubError>> {
        let topic = &self.table.get(this)?.topic;
        Ok(pool_storage(self.ctx, topic))
    }

    pub(crate) fn map_pool(
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
        let maps: Vec<HandleId> = mapped.iter().map(|m| m.0).collect();
        let blocks = mapped.iter().map(|m| (m.1, m.2)).collect();
        let backings = mapped.into_iter().map(|(map, b, _)| (b, map)).collect();
        tracing::debug!(guest = %self.ctx.name(), blocks = maps.len(), "pool mapped");
        sub.mapped = Some(MappedPool {
            pool,
            maps,
            backings,
            blocks,
        });
        Ok(Ok(()))
    }

    pub(crate) fn take_pooled(
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
    pub(crate) fn take_pooled_after(
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

    pub(crate) fn release(
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

/// Maps every block of a pool into `ctx`'s guest once, read-only: a clone
/// of each attached with [`Access::Pool`]. Returns each mapping handle with
/// its block and its address; on any failure drops the mappings made so
/// far.
pub(crate) fn map_blocks(
    ctx: &ShmCtx,
    blocks: &[HandleId],
) -> Result<Vec<(HandleId, BackingId, u32)>, PubSubError> {
    let mut mapped = Vec::with_capacity(blocks.len());
    for &block in blocks {
        let one = ctx.clone_handle(block).and_then(|map| {
            let attached = ctx.attach(map, Access::Pool).and_then(|area| {
                let backing = ctx.backing_id(map)?;
                Ok((map, backing, area.address))
            });
            attached.inspect_err(|_| {
                let _ = ctx.drop_handle(map);
            })
        });
        match one {
            Ok(made) => mapped.push(made),
            Err(e) => {
                for (map, _, _) in mapped {
                    let _ = ctx.drop_handle(map);
                }
                return Err(PubSubError::from_attach(e));
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
