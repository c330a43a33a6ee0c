//! The native `pub-sub` interface: topics in-process, the same rules as the
//! wasm host's broker (pool blocks return only when every subscriber
//! dropped its clone; bounded queues; block or drop-oldest when full).
//!
//! The queue bound and policy come from the environment, as the runner's
//! flags set them on the wasm host: `SHM_QUEUE` (default 8) and
//! `SHM_OVERFLOW` (`block`, the default, or `drop-oldest`).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<HandleId>,
    wakers: Vec<Waker>,
    closed: bool,
    left: bool,
    dropped: u64,
}

#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

impl Queue {
    fn wake(&self, s: &mut QueueState) {
        self.changed.notify_all();
        for w in s.wakers.drain(..) {
            w.wake();
        }
    }
}

#[derive(Default)]
struct TopicState {
    publisher: bool,
    had_publisher: bool,
    queues: Vec<Arc<Queue>>,
}

#[derive(Default)]
struct Topic {
    state: Mutex<TopicState>,
}

/// The topics of this process.
#[derive(Default)]
pub(crate) struct Broker {
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    subscriptions: std::sync::atomic::AtomicUsize,
}

/// How many subscriptions this process ever made (a native topology runner
/// waits for its subscribers to subscribe before starting the publisher).
pub fn subscriptions() -> usize {
    native()
        .pubsub
        .subscriptions
        .load(std::sync::atomic::Ordering::SeqCst)
}

impl Broker {
    fn topic(&self, name: &str) -> Arc<Topic> {
        lock(&self.topics)
            .entry(name.to_string())
            .or_default()
            .clone()
    }
}

fn queue_bound() -> usize {
    std::env::var("SHM_QUEUE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
        .max(1)
}

fn drop_oldest() -> bool {
    std::env::var("SHM_OVERFLOW").is_ok_and(|v| v == "drop-oldest")
}

fn subscribe(topic: &Arc<Topic>) -> Subscriber {
    let mut t = lock(&topic.state);
    let queue = Arc::new(Queue::default());
    lock(&queue.state).closed = t.had_publisher && !t.publisher;
    t.queues.push(queue.clone());
    native()
        .pubsub
        .subscriptions
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Subscriber {
        topic: topic.clone(),
        queue,
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
        let mut t = lock(&self.topic.state);
        t.publisher = false;
        for q in &t.queues {
            let mut s = lock(&q.state);
            s.closed = true;
            q.wake(&mut s);
        }
        drop(t);
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
        let topic = n.pubsub.topic(topic);
        {
            let mut t = lock(&topic.state);
            if t.publisher {
                return Err(PubSubError::TopicTaken);
            }
            t.publisher = true;
            t.had_publisher = true;
            for q in &t.queues {
                lock(&q.state).closed = false;
            }
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
        let queues = lock(&self.topic.state).queues.clone();
        let (bound, drop_oldest) = (queue_bound(), drop_oldest());
        for q in queues {
            let clone = n
                .ledger()
                .clone_handle(pool_handle, n.broker)
                .map_err(|_| PubSubError::Internal)?;
            let mut s = lock(&q.state);
            while s.items.len() >= bound && !s.left {
                if drop_oldest {
                    let oldest = s.items.pop_front().expect("the queue is full");
                    s.dropped += 1;
                    let _ = n.ledger().drop_handle(oldest);
                } else {
                    s = q.changed.wait(s).unwrap_or_else(|e| e.into_inner());
                }
            }
            if s.left {
                drop(s);
                let _ = n.ledger().drop_handle(clone);
                continue;
            }
            s.items.push_back(clone);
            q.wake(&mut s);
        }
        drop(block);
        Ok(())
    }

    /// How many subscriptions the topic has.
    pub fn subscriber_count(&self) -> u32 {
        lock(&self.topic.state).queues.len() as u32
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
        lock(&self.topic.state)
            .queues
            .retain(|q| !Arc::ptr_eq(q, &self.queue));
        let mut s = lock(&self.queue.state);
        s.left = true;
        let queued: Vec<HandleId> = s.items.drain(..).collect();
        self.queue.wake(&mut s);
        drop(s);
        let mut ledger = native().ledger();
        for h in queued {
            let _ = ledger.drop_handle(h);
        }
    }
}

/// Moves a queued message to the program.
fn deliver(queue: &Queue, s: &mut QueueState) -> Option<MemoryBlock> {
    let handle = s.items.pop_front()?;
    queue.wake(s);
    let n = native();
    n.ledger().transfer(handle, n.guest).ok()?;
    Some(MemoryBlock { handle })
}

impl Subscriber {
    /// Subscribes to `topic`.
    pub fn new(topic: &str) -> Subscriber {
        subscribe(&native().pubsub.topic(topic))
    }

    /// The next message, waiting for it.
    pub fn next(&self) -> Option<MemoryBlock> {
        let mut s = lock(&self.queue.state);
        loop {
            if !s.items.is_empty() {
                return deliver(&self.queue, &mut s);
            }
            if s.closed {
                return None;
            }
            s = self
                .queue
                .changed
                .wait(s)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The next message if one is queued.
    pub fn try_next(&self) -> Option<MemoryBlock> {
        deliver(&self.queue, &mut lock(&self.queue.state))
    }

    /// Messages lost to the drop-oldest policy.
    pub fn dropped(&self) -> u64 {
        lock(&self.queue.state).dropped
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
        let mut s = lock(&self.queue.state);
        if !s.items.is_empty() {
            return Poll::Ready(deliver(self.queue, &mut s));
        }
        if s.closed || s.left {
            return Poll::Ready(None);
        }
        s.wakers.push(cx.waker().clone());
        Poll::Pending
    }
}
