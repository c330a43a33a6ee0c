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
//!
//! Files: `broker.rs` (the topics of a host), `publisher.rs` (a pool, lending
//! and publishing, reclaiming from stalling subscribers), `subscriber.rs`
//! (queues, mapped pools, leases), `native.rs` (host code on a topic); the
//! functions' linking is `crate::wit`'s.
//!
//! [`ShmHost`]: crate::ShmHost
//! [`Access::Pool`]: crate::rules::Access::Pool
//! [`ShmHost::evict`]: crate::ShmHost::evict

use std::time::Duration;

mod broker;
pub mod native;
mod publisher;
mod subscriber;

pub(crate) use broker::Broker;
pub use native::{NativePublisher, NativeSubscriber};
pub use publisher::Publisher;
pub use shm_rules::queue::Overflow;
pub(crate) use subscriber::receive;
pub use subscriber::Subscriber;

/// Publish/subscribe settings of a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

/// Setters, one per setting, each returning the changed configuration.
impl PubSubConfig {
    /// Sets [`PubSubConfig::queue`].
    pub fn queue(mut self, queue: usize) -> Self {
        self.queue = queue;
        self
    }

    /// Sets [`PubSubConfig::overflow`].
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Sets [`PubSubConfig::max_pool`].
    pub fn max_pool(mut self, max_pool: u32) -> Self {
        self.max_pool = max_pool;
        self
    }

    /// Sets [`PubSubConfig::max_subscriptions`].
    pub fn max_subscriptions(mut self, max: u32) -> Self {
        self.max_subscriptions = max;
        self
    }

    /// Sets [`PubSubConfig::max_held`].
    pub fn max_held(mut self, max: u32) -> Self {
        self.max_held = max;
        self
    }

    /// Sets [`PubSubConfig::stall_limit`].
    pub fn stall_limit(mut self, limit: Duration) -> Self {
        self.stall_limit = limit;
        self
    }
}
