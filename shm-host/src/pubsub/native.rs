//! Host code on a topic: a [`NativePublisher`] that publishes bytes from
//! outside the sandbox (a camera driver, a Zenoh sample) to subscriber
//! components, and a [`NativeSubscriber`] that reads what components
//! publish (to forward it elsewhere).
//!
//! Each is a guest of the host of its own, with a grant for its one topic
//! and the same rules as a component: a native publisher's pool is a
//! pooled publisher's pool (subscribers may map it and read in place),
//! its messages are published exactly as a component's, and a subscriber
//! component cannot tell them apart. The one copy is the host's: a native
//! publisher writes each message into a free pool block once (through the
//! host's own mapping of the block, in chunks of
//! [`HOST_COPY_CHUNK`](crate::HOST_COPY_CHUNK)), a native subscriber reads
//! each message out once; both count it in the `remote` statistics.
//!
//! ```
//! use std::time::Duration;
//! use shm_host::pubsub::native::{Next, NativePublisher, NativeSubscriber};
//! use shm_host::ShmHost;
//!
//! let host = ShmHost::default();
//! let mut reader = NativeSubscriber::new(&host, "reader", "frames")?;
//! let mut camera = NativePublisher::new(&host, "camera", "frames", 4, 1 << 20)?;
//! camera.publish(&[b"frame ", b"one"])?;
//! let mut bytes = Vec::new();
//! assert_eq!(reader.next_into(&mut bytes, Duration::from_secs(5))?, Next::Message);
//! assert_eq!(bytes, b"frame one");
//! drop(camera);
//! assert_eq!(reader.next_into(&mut bytes, Duration::from_secs(5))?, Next::Ended);
//! assert_eq!(host.statistics().guest("camera").unwrap().remote, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use wasmtime::component::{Resource, ResourceTable};

use crate::pubsub::{receive, Publisher, Subscriber};
use crate::rules::{ExchangeError, PubSubError};
use crate::rules::{HandleId, HostWriteError};
use crate::ShmCtxView;
use crate::{Grants, ShmCtx, ShmHost};

/// Why a native publisher or subscriber could not be made.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The host refused: the topic has a publisher already (`topic-taken`),
    /// a pool of 0 blocks or of empty blocks (`invalid-argument`), a limit.
    #[error("the host refused the topic `{topic}`: {error}")]
    Refused {
        /// The topic.
        topic: String,
        /// The `pub-sub` error the host gave.
        error: PubSubError,
    },
}

/// Why a message was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The message is larger than the pool's blocks.
    #[error("a message of {len} bytes does not fit in the pool's blocks of {block} bytes")]
    TooLarge {
        /// The message's length.
        len: u64,
        /// The pool's block size.
        block: u32,
    },
    /// Every pool block is still being read: try again (the host evicts
    /// subscribers that hold messages past the stall limit).
    #[error("every block of the pool is still being read by subscribers: try again later")]
    PoolExhausted,
    /// The host could not write the block (a bug; never expected).
    #[error("the host could not write the pool block: {0}")]
    Write(#[from] HostWriteError),
    /// The host refused to publish (a `pub-sub` error).
    #[error("the host refused to publish: {0}")]
    Refused(PubSubError),
    /// The publisher was stopped (evicted by the host).
    #[error("the publisher was stopped: {0}")]
    Stopped(String),
}

/// Why no message was received.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The subscriber was stopped (evicted: it kept its topic waiting).
    #[error("the subscriber was stopped: {0}")]
    Stopped(String),
    /// The message's bytes could not be read (never expected).
    #[error("the message could not be read: {0}")]
    Read(ExchangeError),
}

/// What [`NativeSubscriber::next_into`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// A message: its bytes are in the buffer.
    Message,
    /// Nothing arrived within the timeout.
    TimedOut,
    /// The topic's publisher ended and every message was taken.
    Ended,
}

/// A host guest of its own, with its resource table: the state a
/// component's store would hold.
///
/// The table is dropped first (field order): publishers and subscriptions
/// end before the guest does.
struct Endpoint {
    table: ResourceTable,
    ctx: ShmCtx,
}

impl Endpoint {
    fn new(host: &ShmHost, name: &str, grants: Grants) -> Endpoint {
        Endpoint {
            table: ResourceTable::new(),
            ctx: host.new_ctx(name).with_grants(grants),
        }
    }

    fn view(&mut self) -> ShmCtxView<'_> {
        ShmCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Host code publishing to a topic: a pooled publisher whose messages the
/// host copies in (see the module's notes).
pub struct NativePublisher {
    endpoint: Endpoint,
    publisher: Resource<Publisher>,
    block: u32,
}

impl NativePublisher {
    /// The publisher of `topic`, called `name` in statistics and logs, with
    /// a pool of `blocks` blocks of `block_size` bytes.
    pub fn new(
        host: &ShmHost,
        name: &str,
        topic: &str,
        blocks: u32,
        block_size: u32,
    ) -> Result<NativePublisher, OpenError> {
        let mut endpoint = Endpoint::new(host, name, Grants::none().publish(topic));
        let refused = |error| OpenError::Refused {
            topic: topic.to_string(),
            error,
        };
        let publisher = endpoint
            .view()
            .new_publisher(topic.to_string(), blocks, block_size, true)
            .map_err(refused)?;
        let publisher = endpoint
            .table
            .push(publisher)
            .map_err(|_| refused(PubSubError::Internal))?;
        Ok(NativePublisher {
            endpoint,
            publisher,
            block: block_size,
        })
    }

    /// The size of the pool's blocks: the largest message.
    pub fn block_size(&self) -> u32 {
        self.block
    }

    /// Whether the host stopped this publisher (evicted it): publishing
    /// fails from then on.
    pub fn is_stopped(&self) -> bool {
        self.endpoint.ctx.alive().is_err()
    }

    /// How many subscriptions the topic has now.
    pub fn subscriber_count(&self) -> usize {
        self.endpoint
            .table
            .get(&self.publisher)
            .map_or(0, |p| p.topic.subscriber_count())
    }

    /// Publishes one message made of `parts` (written one after the other
    /// into a free pool block: the one copy), to every subscription, under
    /// the host's queue policy. Waits while a full queue blocks (as a
    /// component publisher would); fails at once with
    /// [`PublishError::PoolExhausted`] when no block is free.
    pub fn publish(&mut self, parts: &[&[u8]]) -> Result<(), PublishError> {
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let len = match u32::try_from(total) {
            Ok(len) if len <= self.block => len,
            _ => {
                return Err(PublishError::TooLarge {
                    len: total,
                    block: self.block,
                })
            }
        };
        let stopped = |e: wasmtime::Error| PublishError::Stopped(format!("{e:#}"));
        let handle = match self.endpoint.view().lend_free(&self.publisher) {
            Ok(Ok((handle, _))) => handle,
            Ok(Err(PubSubError::PoolExhausted)) => return Err(PublishError::PoolExhausted),
            Ok(Err(e)) => return Err(PublishError::Refused(e)),
            Err(e) => return Err(stopped(e)),
        };
        if let Err(e) = self.fill(handle, parts, len) {
            let _ = self.endpoint.ctx.drop_handle(handle);
            return Err(e.into());
        }
        match self.endpoint.view().send(&self.publisher, handle, true) {
            Ok(Ok(())) => {
                self.endpoint.ctx.count_remote(u64::from(len));
                Ok(())
            }
            Ok(Err(e)) => Err(PublishError::Refused(e)),
            Err(e) => Err(stopped(e)),
        }
    }

    /// Publishes as [`NativePublisher::publish`], but while no block is
    /// free waits up to `timeout` for one: woken when the host drops a
    /// handle (a subscriber released a message, a queue dropped one), not
    /// by polling; it also tries again every 10 ms, since a try is what
    /// reclaims blocks from subscribers past the stall limit.
    /// [`PublishError::PoolExhausted`] if none came free in time.
    pub fn publish_within(
        &mut self,
        parts: &[&[u8]],
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let host = self.endpoint.ctx.host().clone();
        let done = host
            .released()
            .retry(timeout, || match self.publish(parts) {
                Err(PublishError::PoolExhausted) => None,
                done => Some(done),
            });
        done.unwrap_or(Err(PublishError::PoolExhausted))
    }

    fn fill(&self, handle: HandleId, parts: &[&[u8]], len: u32) -> Result<(), HostWriteError> {
        let ctx = &self.endpoint.ctx;
        let mut at = 0u32;
        for part in parts {
            ctx.write_block(handle, at, part)?;
            // Fits: the parts add up to `len`, which fits in a u32.
            at += part.len() as u32;
        }
        ctx.commit_block(handle, len)
    }
}

/// Host code subscribed to a topic, reading each message out (see the
/// module's notes).
pub struct NativeSubscriber {
    endpoint: Endpoint,
    subscriber: Resource<Subscriber>,
}

impl NativeSubscriber {
    /// A subscription to `topic`, called `name` in statistics and logs. It
    /// receives what is published from now on.
    pub fn new(host: &ShmHost, name: &str, topic: &str) -> Result<NativeSubscriber, OpenError> {
        NativeSubscriber::open(host, name, topic, None)
    }

    /// A subscription as [`NativeSubscriber::new`] whose full queue follows
    /// `overflow` whatever the host's policy. With
    /// [`Overflow::DropOldest`](crate::pubsub::Overflow::DropOldest) (a
    /// recorder's choice) it never slows the publisher: under the host's
    /// `block` it loses its own oldest messages (counted in
    /// [`NativeSubscriber::dropped`]) instead of making the publisher wait,
    /// and is never evicted for a full queue.
    pub fn with_overflow(
        host: &ShmHost,
        name: &str,
        topic: &str,
        overflow: crate::pubsub::Overflow,
    ) -> Result<NativeSubscriber, OpenError> {
        NativeSubscriber::open(host, name, topic, Some(overflow))
    }

    fn open(
        host: &ShmHost,
        name: &str,
        topic: &str,
        overflow: Option<crate::pubsub::Overflow>,
    ) -> Result<NativeSubscriber, OpenError> {
        let mut endpoint = Endpoint::new(host, name, Grants::none().subscribe(topic));
        let refused = |error| OpenError::Refused {
            topic: topic.to_string(),
            error,
        };
        let subscriber = endpoint
            .view()
            .new_subscriber_with(topic, overflow)
            .map_err(refused)?;
        let subscriber = endpoint
            .table
            .push(subscriber)
            .map_err(|_| refused(PubSubError::Internal))?;
        Ok(NativeSubscriber {
            endpoint,
            subscriber,
        })
    }

    /// Messages this subscription lost to the `drop-oldest` policy.
    pub fn dropped(&self) -> u64 {
        self.endpoint
            .table
            .get(&self.subscriber)
            .map_or(0, |s| s.queue.dropped())
    }

    /// Takes the next message, waiting at most `timeout`, and puts its
    /// valid bytes in `bytes` (replacing what it held).
    pub fn next_into(
        &mut self,
        bytes: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<Next, ReceiveError> {
        let stopped = |e: wasmtime::Error| ReceiveError::Stopped(format!("{e:#}"));
        let ctx = &self.endpoint.ctx;
        ctx.alive().map_err(stopped)?;
        let queue = match self.endpoint.table.get(&self.subscriber) {
            Ok(s) => s.queue.clone(),
            Err(e) => return Err(ReceiveError::Stopped(e.to_string())),
        };
        let handle = match queue.pop_timeout(timeout) {
            Ok(Some(h)) => h,
            Ok(None) => {
                // Evicted meanwhile, or the publisher ended.
                ctx.alive().map_err(stopped)?;
                return Ok(Next::Ended);
            }
            Err(_) => return Ok(Next::TimedOut),
        };
        receive(ctx, handle).map_err(stopped)?;
        bytes.clear();
        let read = ctx.read_block(handle, bytes);
        let _ = ctx.drop_handle(handle);
        read.map_err(ReceiveError::Read)?;
        ctx.count_remote(bytes.len() as u64);
        Ok(Next::Message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading a message releases its block, and the release wakes waiters
    /// (`publish_within`, `loan-within`): the host's drop count moves.
    #[test]
    fn a_release_wakes_who_waits_for_a_block() {
        let host = ShmHost::default();
        let mut reader = NativeSubscriber::new(&host, "reader", "t").unwrap();
        let mut writer = NativePublisher::new(&host, "writer", "t", 1, 4096).unwrap();
        writer.publish(&[b"one"]).unwrap();
        let seen = host.released().epoch();
        assert!(!host.released().wait(seen, Duration::from_millis(1)));
        let mut bytes = Vec::new();
        let next = reader.next_into(&mut bytes, Duration::from_secs(60));
        assert_eq!(next.unwrap(), Next::Message);
        assert!(host.released().wait(seen, Duration::ZERO));
        writer.publish(&[b"two"]).unwrap();
    }

    /// A subscription with its own `drop-oldest` (a recorder's) never
    /// slows the publisher under the host's `block`: it neither makes a
    /// publish wait nor gets evicted, loses its own oldest messages
    /// (counted), and a `block` subscriber beside it gets every message.
    /// Both ways a recorder could hold a publisher up: its queue full
    /// before the pool runs dry (`Queue::push` follows its policy), and the
    /// pool dry with its queue holding every block (`reclaim` does).
    #[test]
    fn a_subscription_of_its_own_drop_oldest_never_slows_a_block_publisher() {
        for (queue, blocks) in [(1, 4), (4, 2)] {
            own_drop_oldest(queue, blocks);
        }
    }

    fn own_drop_oldest(queue: usize, blocks: u32) {
        let host = ShmHost::new(
            crate::ShmConfig::default().pubsub(
                crate::pubsub::PubSubConfig::default()
                    .queue(queue)
                    .stall_limit(Duration::from_secs(20)),
            ),
        );
        let mut recorder = NativeSubscriber::with_overflow(
            &host,
            "recorder",
            "t",
            crate::pubsub::Overflow::DropOldest,
        )
        .unwrap();
        let mut honest = NativeSubscriber::new(&host, "honest", "t").unwrap();
        let mut writer = NativePublisher::new(&host, "writer", "t", blocks, 4096).unwrap();
        let mut bytes = Vec::new();
        let started = std::time::Instant::now();
        for i in 0u32..20 {
            // `publish` fails at once when no block is free: it never
            // waits for one.
            writer.publish(&[&i.to_le_bytes()]).unwrap();
            let next = honest.next_into(&mut bytes, Duration::from_secs(60));
            assert_eq!(next.unwrap(), Next::Message);
            assert_eq!(bytes, i.to_le_bytes());
        }
        // Below the stall limit: nobody waited for the recorder's full
        // queue (under the host's policy a publish would wait the whole
        // limit, then evict it).
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{queue} {blocks}"
        );
        assert_eq!(honest.dropped(), 0);
        let kept = queue.min(blocks as usize) as u64;
        assert_eq!(recorder.dropped(), 20 - kept, "{queue} {blocks}");
        assert!(!writer.is_stopped());
        // Not evicted: it still reads the newest messages.
        let next = recorder.next_into(&mut bytes, Duration::from_secs(60));
        assert_eq!(next.unwrap(), Next::Message);
        assert_eq!(bytes, (20 - kept as u32).to_le_bytes(), "{queue} {blocks}");
    }

    /// Under `drop-oldest` a subscriber that does not take costs only
    /// itself: with its queue holding every block of the pool, the next
    /// publish drops its oldest queued message at once (no wait for the
    /// stall limit), and a subscriber that keeps up gets every message.
    #[test]
    fn under_drop_oldest_a_subscriber_that_does_not_take_never_makes_the_publisher_wait() {
        let host = ShmHost::new(crate::ShmConfig::default().pubsub(
            crate::pubsub::PubSubConfig::default().overflow(crate::pubsub::Overflow::DropOldest),
        ));
        let slow = NativeSubscriber::new(&host, "slow", "t").unwrap();
        let mut honest = NativeSubscriber::new(&host, "honest", "t").unwrap();
        let mut writer = NativePublisher::new(&host, "writer", "t", 4, 4096).unwrap();
        let mut bytes = Vec::new();
        for i in 0u32..20 {
            // `publish` fails at once when no block is free: it never waits.
            writer.publish(&[&i.to_le_bytes()]).unwrap();
            let next = honest.next_into(&mut bytes, Duration::from_secs(60));
            assert_eq!(next.unwrap(), Next::Message);
            assert_eq!(bytes, i.to_le_bytes());
        }
        assert_eq!(honest.dropped(), 0);
        // The slow one keeps the newest messages the pool can spare.
        assert!(slow.dropped() >= 16, "{}", slow.dropped());
    }
}
