//! Freeing pool blocks that stalling subscribers keep from their publisher:
//! the decision is the rules', what a backend does to a stalling
//! subscriber is its own ([`Reclaimer`]).

use std::sync::Arc;
use std::time::Instant;

use super::{Overflow, Pool, PubSubConfig, Queue, Topic};
use crate::{BackingId, HandleId};

/// What the reclaim asks of a backend.
pub trait Reclaimer {
    /// How many live handles name `handle`'s block (0 if none).
    fn handles_of_block(&self, handle: HandleId) -> usize;
    /// The block (backing) `handle` names.
    fn backing(&self, handle: HandleId) -> Option<BackingId>;
    /// Drops a message taken out of a queue (a detached handle of the
    /// backend's pool holder).
    fn drop_queued(&self, handle: HandleId);
    /// Under [`Overflow::Block`], `queue` kept a message of its topic past
    /// the stall limit: end what it costs (the host evicts its guest).
    /// Returns whether anything was done.
    fn stalled_queue(&self, queue: &Arc<Queue>, reason: String) -> bool;
    /// Someone still holds a message of `pool_handle`'s block published
    /// past the stall limit ago: end what it costs (the host evicts every
    /// guest but the pool's holder and the publisher that holds one).
    /// Returns whether anything was done.
    fn stalled_holders(&self, pool_handle: HandleId, reason: String) -> bool;
}

/// Frees blocks of `pool` (the pool of `topic`, called `name`) that stalling
/// subscribers keep from the publisher. Returns whether it did anything.
///
/// Each subscription follows its own policy where it has one
/// ([`Queue::with_overflow`]), the host's (`config.overflow`) otherwise.
/// Under [`Overflow::DropOldest`] a queued message is the subscriber's to
/// lose, at once: the oldest published block that only queues still hold
/// (no subscriber is reading it) is dropped from them, so that a slow
/// subscriber (its queue full of messages it has not taken) never makes the
/// publisher wait (a block also queued for a `block` subscription is left
/// to it). A block someone still reads is left alone (dropping its
/// queued copies would free nothing); held messages are bounded per
/// subscription ([`PubSubConfig::max_held`]) and reclaimed past the stall
/// limit. Past the stall limit, under either policy, a block still queued
/// or held is reclaimed: queued copies are dropped (`drop-oldest`) or their
/// queue is stalled (`block`), and its holders are stalled.
pub fn reclaim(
    pool: &Pool,
    topic: &Topic,
    name: &str,
    config: &PubSubConfig,
    now: Instant,
    backend: &impl Reclaimer,
) -> bool {
    let stall = config.stall_limit;
    let mut acted = false;
    // The subscriptions whose queued messages are theirs to lose: every one
    // under a host-wide `drop-oldest`, and those with a policy of their own
    // (a recorder's) under `block`.
    let dropping: Vec<Arc<Queue>> = topic
        .queues()
        .into_iter()
        .filter(|q| q.overflow(config.overflow) == Overflow::DropOldest)
        .collect();
    if !dropping.is_empty() {
        for i in pool.published_oldest_first() {
            let pool_handle = pool.handle(i);
            let Some(backing) = backend.backing(pool_handle) else {
                continue;
            };
            let of_block = |h: HandleId| backend.backing(h) == Some(backing);
            let queued: usize = dropping.iter().map(|q| q.count(of_block)).sum();
            // Only those queues hold the block (besides the pool): nobody
            // reads it, no `block` queue waits to deliver it.
            if queued == 0 || backend.handles_of_block(pool_handle) != 1 + queued {
                continue;
            }
            for q in &dropping {
                for h in q.drop_queued(of_block) {
                    backend.drop_queued(h);
                }
            }
            if backend.handles_of_block(pool_handle) == 1 {
                return true;
            }
            acted = true;
        }
    }
    for (i, &pool_handle) in pool.handles().iter().enumerate() {
        if !pool.stale(i, now, stall) || backend.handles_of_block(pool_handle) == 1 {
            continue;
        }
        let Some(backing) = backend.backing(pool_handle) else {
            continue;
        };
        let of_block = |h: HandleId| backend.backing(h) == Some(backing);
        for q in topic.queues() {
            match q.overflow(config.overflow) {
                Overflow::DropOldest => {
                    for h in q.drop_queued(of_block) {
                        backend.drop_queued(h);
                        acted = true;
                    }
                }
                Overflow::Block => {
                    if q.holds(of_block) {
                        let reason = format!(
                            "did not take a message of topic `{name}` within the stall limit of {stall:?}"
                        );
                        acted |= backend.stalled_queue(&q, reason);
                    }
                }
            }
        }
        let reason = format!(
            "held a message of topic `{name}` for longer than the stall limit of {stall:?}"
        );
        // A lease ring's messages are held for its subscriber by the
        // backend's pool holder: the subscription is the holder to end.
        for q in topic.queues() {
            if q.in_ring(of_block) {
                acted |= backend.stalled_queue(&q, reason.clone());
            }
        }
        acted |= backend.stalled_holders(pool_handle, reason);
    }
    acted
}
