//! The native `pub-sub` interface: topics in-process, the same rules as the
//! wasm host's broker (pool blocks return only when every subscriber
//! dropped its clone; bounded queues; block or drop-oldest when full).
//!
//! The queue bound and policy come from the environment, as the runner's
//! flags set them on the wasm host: `SHM_QUEUE` (default 8) and
//! `SHM_OVERFLOW` (`block`, the default, or `drop-oldest`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use shm_rules::queue::{Overflow, Queue, Topic, Topics};
use shm_rules::HandleId;

use super::exchange::MemoryBlock;
use super::native;

/// Why a publish/subscribe operation failed (the WIT `pub-sub-error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PubSubError {
    /// Every pool block is in use.
    PoolExhausted,
    /// The block is still attached.
    StillAttached,
    /// Not a block of this publisher.
    ForeignBlock,
    /// The topic has a publisher.
    TopicTaken,
    /// An argument is out of range.
    InvalidArgument,
    /// The backend failed.
    Internal,
}

/// The topics of this process.
#[derive(Default)]
pub(crate) struct Broker {
    topics: Topics,
}

/// How many subscriptions this process ever made (a native topology runner
/// waits for its subscribers to subscribe before starting the publisher).
pub fn subscriptions() -> usize {
    native().pubsub.topics.subscriptions()
}

fn queue_bound() -> usize {
    std::env::var("SHM_QUEUE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
        .max(1)
}

fn overflow() -> Overflow {
    match std::env::var("SHM_OVERFLOW") {
        Ok(v) if v == "drop-oldest" => Overflow::DropOldest,
        _ => Overflow::Block,
    }
}

fn subscribe(topic: &Arc<Topic>) -> Subscriber {
    Subscriber {
        topic: topic.clone(),
        queue: native().pubsub.topics.subscribe(topic),
    }
}

/// The publishing side of a topic (the WIT resource `publisher`).
pub struct Publisher {
    topic: Arc<Topic>,
    pool: Vec<HandleId>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("pool", &self.pool.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.topic.close_publisher();
        let mut ledger = native().ledger();
        for &h in &self.pool {
            let _ = ledger.drop_handle(h);
        }
    }
}

impl Publisher {
    /// A publisher on `topic` with `elements` blocks of `element_size` bytes.
    pub fn new(topic: &str, elements: u32, element_size: u32) -> Result<Publisher, PubSubError> {
        if elements == 0 || elements > 1024 {
            return Err(PubSubError::InvalidArgument);
        }
        let n = native();
        let topic = n.pubsub.topics.topic(topic);
        if !topic.open_publisher() {
            return Err(PubSubError::TopicTaken);
        }
        let mut publisher = Publisher {
            topic,
            pool: Vec::new(),
        };
        for _ in 0..elements {
            let h = n
                .create(element_size)
                .map_err(|_| PubSubError::InvalidArgument)?;
            n.ledger()
                .transfer(h, n.broker)
                .map_err(|_| PubSubError::Internal)?;
            publisher.pool.push(h);
        }
        Ok(publisher)
    }

    /// A new subscription to this topic.
    pub fn subscribers(&self) -> Subscriber {
        subscribe(&self.topic)
    }

    /// A free pool block, writable, and its bytes initialized from last use.
    pub fn allocate(&self) -> Result<(MemoryBlock, u32), PubSubError> {
        let n = native();
        let mut ledger = n.ledger();
        let free = self
            .pool
            .iter()
            .copied()
            .find(|&h| ledger.handles_of_block(h) == Ok(1))
            .ok_or(PubSubError::PoolExhausted)?;
        let valid = ledger.valid_range(free).map(|(c, v)| c + v).unwrap_or(0);
        let handle = ledger
            .alias(free, n.guest)
            .map_err(|_| PubSubError::InvalidArgument)?;
        Ok((MemoryBlock { handle }, valid))
    }

    /// Sends `block` to every subscriber as a read-only clone.
    pub fn publish(&self, block: MemoryBlock) -> Result<(), PubSubError> {
        let n = native();
        let pool_handle = {
            let ledger = n.ledger();
            let backing = ledger
                .backing_of(block.handle)
                .map_err(|_| PubSubError::Internal)?
                .0;
            let pool_handle = self
                .pool
                .iter()
                .copied()
                .find(|&h| ledger.backing_of(h).map(|b| b.0) == Ok(backing))
                .ok_or(PubSubError::ForeignBlock)?;
            if !matches!(ledger.attached(block.handle), Ok(None)) {
                return Err(PubSubError::StillAttached);
            }
            pool_handle
        };
        let (bound, overflow) = (queue_bound(), overflow());
        for q in self.topic.queues() {
            let clone = n
                .ledger()
                .clone_handle(pool_handle, n.broker)
                .map_err(|_| PubSubError::Internal)?;
            let drop_handle = |h| {
                let _ = n.ledger().drop_handle(h);
            };
            if !q.push(clone, bound, overflow, drop_handle) {
                drop_handle(clone);
            }
        }
        drop(block);
        Ok(())
    }

    /// How many subscriptions the topic has.
    pub fn subscriber_count(&self) -> u32 {
        self.topic.subscriber_count() as u32
    }
}

/// The receiving side of a topic (the WIT resource `subscriber`).
pub struct Subscriber {
    topic: Arc<Topic>,
    queue: Arc<Queue>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").finish_non_exhaustive()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let queued = self.topic.leave(&self.queue);
        let mut ledger = native().ledger();
        for h in queued {
            let _ = ledger.drop_handle(h);
        }
    }
}

/// Moves a queued message to the program.
fn deliver(handle: HandleId) -> Option<MemoryBlock> {
    let n = native();
    n.ledger().transfer(handle, n.guest).ok()?;
    Some(MemoryBlock { handle })
}

impl Subscriber {
    /// Subscribes to `topic`.
    pub fn new(topic: &str) -> Subscriber {
        subscribe(&native().pubsub.topics.topic(topic))
    }

    /// The next message, waiting for it.
    pub fn next(&self) -> Option<MemoryBlock> {
        deliver(self.queue.pop_wait()?)
    }

    /// The next message if one is queued.
    pub fn try_next(&self) -> Option<MemoryBlock> {
        deliver(self.queue.try_pop()?)
    }

    /// Messages lost to the drop-oldest policy.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
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
