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
//! (an in-pool attachment, `ShmCtx::attach_in_pool`) and kept under a lease until
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
//! (queues, mapped pools, leases), `ring.rs` (a subscription's lease ring:
//! messages offered in shared memory, taken and released without a host
//! call), `native.rs` (host code on a topic); the
//! functions' linking is `crate::wit`'s.
//!
//! [`ShmHost`]: crate::ShmHost
//! [`Access::Pool`]: crate::rules::Access::Pool
//! [`ShmHost::evict`]: crate::ShmHost::evict

mod broker;
pub mod native;
mod publisher;
mod ring;
mod subscriber;

pub(crate) use broker::Broker;
pub use native::{NativePublisher, NativeSubscriber};
pub use publisher::Publisher;
pub use shm_rules::pubsub::{Overflow, PubSubConfig};
pub(crate) use subscriber::receive;
pub use subscriber::Subscriber;
