//! A subscription's lease ring (`subscriber.map-ring`, `wait-ring`): the
//! topic's messages offered in shared memory, taken and released by the
//! subscriber without a host call.
//!
//! The ring's rules are `shm_rules::pubsub::ring`'s; this file maps its two
//! regions (host blocks created for, and charged to, the subscriber's
//! guest: the offered one attached as a read-only pool mapping, the
//! returned one attached for writing) and hands the queue a
//! [`RingStage`] over the host's own mapping of them ([`RingPages`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use shm_rules::pubsub::ring::{offered_bytes, returned_bytes, Describe, RingStage, MAX_CAPACITY};
use shm_rules::pubsub::SharedPool;
use wasmtime::component::Resource;

use super::publisher::pool_storage;
use super::Subscriber;
use crate::os::pages::RingPages;
use crate::rules::{Access, BackingId, HandleId, PubSubError};
use crate::wit::{RingArea, RingWait, ShmCtxView};
use crate::{ShmCtx, ShmHost};

/// A subscription's ring as its subscriber holds it.
pub(crate) struct SubscriberRing {
    capacity: u32,
    /// The two regions' handles (offered, returned), held by the
    /// subscriber's guest, attached.
    pub(crate) regions: [HandleId; 2],
    /// The pool the ring serves.
    pool: Arc<SharedPool>,
    area: RingArea,
    /// Refused returned values already reported.
    reported: u64,
}

impl ShmCtxView<'_> {
    /// The storage `map-ring(capacity)` needs: the pool's and the regions'.
    pub(crate) fn ring_storage(
        &mut self,
        this: &Resource<Subscriber>,
        capacity: u32,
    ) -> wasmtime::Result<Result<u32, PubSubError>> {
        let topic = &self.table.get(this)?.topic;
        let pool = match pool_storage(self.ctx, topic) {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        let region = region_bytes(capacity.clamp(1, MAX_CAPACITY));
        let regions = self.ctx.optimum_size(2, region);
        Ok(Ok(pool.saturating_add(regions)))
    }

    /// Gives the subscription a ring of `capacity` messages (see the WIT).
    pub(crate) fn map_ring(
        &mut self,
        this: &Resource<Subscriber>,
        capacity: u32,
    ) -> wasmtime::Result<Result<RingArea, PubSubError>> {
        self.ctx.alive()?;
        if let Err(e) = self.broker().config.check_ring(capacity) {
            return Ok(Err(e));
        }
        if let Some(ring) = &self.table.get(this)?.ring {
            return Ok(if ring.capacity == capacity {
                Ok(ring.area.clone())
            } else {
                Err(PubSubError::InvalidArgument)
            });
        }
        if let Err(e) = self.map_pool(this)? {
            return Ok(Err(e));
        }
        let sub = self.table.get(this)?;
        let Some((pool, addresses, backings)) = sub.mapped_pool() else {
            return Ok(Err(PubSubError::NotPooled));
        };
        let index: HashMap<BackingId, u32> = backings
            .into_iter()
            .enumerate()
            .map(|(i, b)| (b, i as u32))
            .collect();
        let queue = sub.queue.clone();
        let (regions, area) = match map_regions(self.ctx, capacity, addresses) {
            Ok(made) => made,
            Err(e) => return Ok(Err(e)),
        };
        let host = self.ctx.host().clone();
        let (Some(offered), Some(returned)) = (pages(&host, regions[0]), pages(&host, regions[1]))
        else {
            drop_regions(self.ctx, regions);
            return Ok(Err(PubSubError::Internal));
        };
        let stage = RingStage::new(
            capacity,
            Box::new(offered),
            Box::new(returned),
            describe(host.clone(), index),
        );
        if let Err((refused, _)) = queue.attach_ring(stage, |h| host.drop_detached(h)) {
            drop_regions(self.ctx, regions);
            return Ok(Err(refused.into()));
        }
        tracing::debug!(guest = %self.ctx.name(), capacity, "lease ring mapped");
        self.table.get_mut(this)?.ring = Some(SubscriberRing {
            capacity,
            regions,
            pool,
            area: area.clone(),
            reported: 0,
        });
        Ok(Ok(area))
    }

    /// Reconciles the ring, then waits for more than `seen` messages.
    pub(crate) fn wait_ring(
        &mut self,
        this: &Resource<Subscriber>,
        seen: u64,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<RingWait, PubSubError>> {
        self.ctx.alive()?;
        let sub = self.table.get(this)?;
        let Some(ring) = &sub.ring else {
            return Ok(Err(PubSubError::InvalidArgument));
        };
        if let Some(pool) = sub.topic.pool() {
            if !Arc::ptr_eq(&pool, &ring.pool) {
                return Ok(Err(PubSubError::PoolChanged));
            }
        }
        let queue = sub.queue.clone();
        let host = self.ctx.host().clone();
        let timeout = Duration::from_millis(timeout_ms.into());
        let waited = queue.wait_ring(seen, timeout, |h| host.drop_detached(h));
        // Evicted while waiting: the ring ended, and so does the guest.
        self.ctx.alive()?;
        // What the host refused in the returned region (whoever read it:
        // this call or a publisher wanting blocks back) is reported here.
        let refused = queue.ring_counts().map_or(0, |(_, _, refused)| refused);
        if let Some(ring) = self.table.get_mut(this)?.ring.as_mut() {
            if refused > ring.reported {
                let new = refused - ring.reported;
                ring.reported = refused;
                self.ctx.refused(format_args!(
                    "{new} values of its lease ring's returned region (not a message it holds, or a count out of range): those messages stay held"
                ));
            }
        }
        Ok(waited.map_err(PubSubError::from).map(|w| RingWait {
            published: w.published,
            ended: w.ended,
        }))
    }
}

/// The block size of a ring region: the offered region is the larger.
fn region_bytes(capacity: u32) -> u32 {
    let bytes = offered_bytes(capacity).max(returned_bytes(capacity));
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Creates and attaches the two regions of a ring in `ctx`'s guest: the
/// offered one read-only (a pool mapping), the returned one for writing.
fn map_regions(
    ctx: &ShmCtx,
    capacity: u32,
    blocks: Vec<u32>,
) -> Result<([HandleId; 2], RingArea), PubSubError> {
    let size = region_bytes(capacity);
    let offered = ctx.create(size).map_err(|_| PubSubError::LimitExceeded)?;
    let returned = match ctx.create(size) {
        Ok(h) => h,
        Err(_) => {
            let _ = ctx.drop_handle(offered);
            return Err(PubSubError::LimitExceeded);
        }
    };
    let regions = [offered, returned];
    let attached = ctx.attach(offered, Access::Pool).and_then(|o| {
        let r = ctx.attach(returned, Access::Write)?;
        Ok((o, r))
    });
    match attached {
        Ok((o, r)) => Ok((
            regions,
            RingArea {
                offered: o.address,
                returned: r.address,
                capacity,
                blocks,
            },
        )),
        Err(e) => {
            drop_regions(ctx, regions);
            Err(PubSubError::from_attach(e))
        }
    }
}

fn drop_regions(ctx: &ShmCtx, regions: [HandleId; 2]) {
    for h in regions {
        let _ = ctx.drop_handle(h);
    }
}

/// The host's mapping of `handle`'s block, for the ring.
fn pages(host: &ShmHost, handle: HandleId) -> Option<RingPages> {
    let ledger = host.ledger();
    let (_, _, pages) = ledger.backing_of(handle).ok()?;
    Some(RingPages(pages?.clone()))
}

/// Which block of the ring's pool a queued handle names (by its index in
/// `index`), and its valid length.
fn describe(host: ShmHost, index: HashMap<BackingId, u32>) -> Describe {
    Box::new(move |h: HandleId| {
        let ledger = host.ledger();
        let (backing, _, _) = ledger.backing_of(h).ok()?;
        let block = *index.get(&backing)?;
        let (consumed, valid) = ledger.valid_range(h).ok()?;
        Some((block, consumed + valid))
    })
}
