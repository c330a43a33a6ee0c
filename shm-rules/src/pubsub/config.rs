//! Publish/subscribe settings, one set for every backend.

use std::time::Duration;

use super::{Overflow, PubSubError, MAX_HELD};

/// The largest pool a host may allow ([`PubSubConfig::max_pool`]).
pub const MAX_POOL: u32 = 1 << 16;

/// Publish/subscribe settings of a host (or of the native backend).
///
/// Start from the default and change what you need; new settings may come
/// without breaking this:
///
/// ```
/// use shm_rules::pubsub::{Overflow, PubSubConfig};
///
/// let config = PubSubConfig::default().queue(2).overflow(Overflow::DropOldest);
/// assert_eq!(config.queue, 2);
/// ```
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
    /// is evicted (the host) or its subscription ends (natively).
    pub stall_limit: Duration,
}

impl Default for PubSubConfig {
    fn default() -> Self {
        PubSubConfig {
            queue: 8,
            overflow: Overflow::Block,
            max_pool: 1024,
            max_subscriptions: 64,
            max_held: MAX_HELD,
            stall_limit: Duration::from_secs(10),
        }
    }
}

/// Setters, one per setting, each returning the changed configuration.
impl PubSubConfig {
    /// Checks a lease ring's capacity: 1 to [`super::ring::MAX_CAPACITY`]
    /// (`invalid-argument`), and at most the queue bound plus the held
    /// bound (`limit-exceeded`): what a ring holds is out of the
    /// publisher's pool, as queued and held messages are.
    pub fn check_ring(&self, capacity: u32) -> Result<(), PubSubError> {
        if capacity == 0 || capacity > super::ring::MAX_CAPACITY {
            return Err(PubSubError::InvalidArgument);
        }
        let budget = self.queue.saturating_add(self.max_held as usize);
        if capacity as usize > budget {
            return Err(PubSubError::LimitExceeded);
        }
        Ok(())
    }

    /// Sets [`PubSubConfig::queue`] (at least 1).
    pub fn queue(mut self, queue: usize) -> Self {
        self.queue = queue.max(1);
        self
    }

    /// Sets [`PubSubConfig::overflow`].
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Sets [`PubSubConfig::max_pool`] (at most [`MAX_POOL`]: a guest's
    /// pool size sizes the host's bookkeeping before its block limits
    /// apply).
    pub fn max_pool(mut self, max_pool: u32) -> Self {
        self.max_pool = max_pool.min(MAX_POOL);
        self
    }

    /// Sets [`PubSubConfig::max_subscriptions`].
    pub fn max_subscriptions(mut self, max: u32) -> Self {
        self.max_subscriptions = max;
        self
    }

    /// Sets [`PubSubConfig::max_held`] (at least 1).
    pub fn max_held(mut self, max: u32) -> Self {
        self.max_held = max.max(1);
        self
    }

    /// Sets [`PubSubConfig::stall_limit`].
    pub fn stall_limit(mut self, limit: Duration) -> Self {
        self.stall_limit = limit;
        self
    }
}
